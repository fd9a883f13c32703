"""The console in a real browser: Playwright drives Debian's Chromium (``/usr/bin/chromium``; the
browser is never downloaded) against the application served by uvicorn, on both engines. A
customer signs in, orders a server accepting the terms, stops it and undoes the stop in one click
each (htmx swaps the row), downloads an invoice's PDF, and is refused the back office; a billing
operator finds the customer, issues a credit note and downloads it. A contact change is answered
by both of its accounts (one from the mailed link), and a support agent works the queue: the
closest deadline first, an internal note, an answer with a new status and priority. Screenshots
of the main pages are saved in ``var/screenshots/``.

Without Chromium the tests are skipped, unless ``UNIVERS_REQUIRE_BROWSER=1`` (``.ci/run`` sets it
and installs Chromium when it is missing)."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from core.customers.accounts import create_customer
from core.uow import unit_of_work

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[1] / "var" / "screenshots"
SERVER = "bm-ks-1-p1m"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

if not CHROMIUM.exists():
    if os.environ.get("UNIVERS_REQUIRE_BROWSER") == "1":
        raise RuntimeError("UNIVERS_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing: apt-get install -y chromium")
    pytest.skip("Debian's Chromium is not installed (apt-get install -y chromium)", allow_module_level=True)


@pytest.fixture
def served(shop):
    """The application over the test's runtime, served by uvicorn on a free port."""
    import uvicorn

    from core.api.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(shop.rt), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        yield chromium
        chromium.close()


def _shot(page, name: str, engine: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{engine}.png"), full_page=True)


def _sign_in(page, base: str, key: str) -> None:
    page.goto(f"{base}/manager/sign-in")
    page.fill("input[name=key]", key)
    page.click("form#with-key button[type=submit]")


def test_a_customer_orders_stops_undoes_downloads_a_pdf_and_staff_credit_it(shop, served, browser, engine_name, tmp_path):
    acme = shop.signup(top_up="300.00", email="ops@acme.example", language="en_GB")
    with unit_of_work(shop.rt) as conn:
        _, operator = create_customer(conn, shop.rt, {"subsidiary": "FR", "name": "Billing desk", "email": "bo@univers.example",
                                                      "language": "en_GB"}, is_staff=True, staff_role="billing_operator")
    context = browser.new_context(accept_downloads=True, locale="en-GB")
    page = context.new_page()

    _sign_in(page, served, acme["headers"]["Authorization"][7:])
    page.wait_for_url(f"{served}/manager/")
    assert page.locator("h1").inner_text() == "My services"

    page.click("nav >> text=Order")
    _shot(page, "catalog", engine_name)
    page.click(f"a[href='/manager/order/{SERVER}']")
    page.check("input[name=agree]")
    _shot(page, "order", engine_name)
    page.click("form.card button[type=submit]")
    page.wait_for_url(re.compile(r".*/manager/\?ordered=\d+$"))
    shop.deliver()  # the server is delivered, as the provisioning worker does
    page.reload()
    row = page.locator("table#services tbody tr").first
    assert "Renews automatically" in row.inner_text() and "Active" in row.inner_text()
    _shot(page, "services", engine_name)

    row.locator("button", has_text="Stop at expiry").click()  # htmx: the row comes back, the page stays
    page.wait_for_selector("table#services tbody tr >> text=Stops at expiry")
    assert re.search(r"/manager/\?ordered=\d+$", page.url)  # the click did not leave the page
    page.locator("table#services tbody tr").first.locator("button", has_text="Undo the stop").click()
    page.wait_for_selector("table#services tbody tr >> text=Renews automatically")
    services = shop.client.get("/v1/services", headers=acme["headers"]).json()["items"]
    assert [s["renewal_mode"] for s in services] == ["automatic"]

    page.locator("table#services tbody tr").first.locator("a").first.click()  # the service's page: open a ticket
    page.fill("form#new-ticket input[name=subject]", "Packet loss")
    page.fill("form#new-ticket textarea[name=message]", "10 % loss since 09:40.")
    _shot(page, "service", engine_name)
    page.click("form#new-ticket button[type=submit]")
    page.wait_for_url(re.compile(r".*/manager/tickets/\d+$"))
    assert "10 % loss since 09:40." in page.inner_text("#thread")
    _shot(page, "ticket", engine_name)

    page.click("nav >> text=Invoices")
    _shot(page, "invoices", engine_name)
    with page.expect_download() as download:
        page.click("table#invoices a:has-text('PDF')")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.read_bytes().startswith(b"%PDF")

    refused = page.goto(f"{served}/backoffice/")
    assert refused.status == 403 and "Not possible" in page.inner_text("h1")
    assert page.locator("a[href='/backoffice/']").count() == 0
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{served}/manager/sign-in")

    _sign_in(page, served, operator)
    page.wait_for_url(f"{served}/backoffice/")
    page.fill("input[name=q]", "ops@acme.example")
    page.click("button:has-text('Search')")
    page.click("ul.found a:has-text('Acme SAS')")
    _shot(page, "customer-360", engine_name)
    page.click("table#invoices a")
    page.fill("form#credit-note input[name^=line_]", "5.00")
    page.fill("form#credit-note input[name=reason]", "Goodwill for the outage")
    _shot(page, "credit-note-form", engine_name)
    page.click("form#credit-note button[type=submit]")
    page.wait_for_selector("text=Goodwill for the outage")
    assert "Credit note" in page.inner_text("h1")
    _shot(page, "credit-note", engine_name)
    with page.expect_download() as download:  # staff download any customer's document
        page.click("a#pdf")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name.startswith("FRC-") and path.read_bytes().startswith(b"%PDF")
    with page.expect_response(lambda r: "/backoffice/forecast.svg" in r.url) as chart:
        page.click("nav >> text=Forecast")
    assert chart.value.status == 200 and chart.value.header_value("content-type").startswith("image/svg+xml")
    page.wait_for_load_state("load")
    _shot(page, "forecast", engine_name)
    page.click("nav >> text=Overdue")
    _shot(page, "overdue", engine_name)
    context.close()


def test_a_contact_change_is_answered_by_both_accounts_and_an_agent_works_the_support_queue(shop, served, browser,
                                                                                           engine_name, inbox):
    from core.scheduler import run_queues

    acme = shop.signup(top_up="300.00", email="ops@acme.example", language="en_GB")
    bob = shop.signup(name="Bob Braun SARL", email="bob@example.org", language="en_GB")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    r = shop.client.post(f"/v1/services/{server}/contact-changes", headers=acme["headers"],
                         json={"role": "tech", "to": bob["handle"]})
    assert r.status_code == 201, r.text
    run_queues(shop.rt)
    mails = {m["To"]: m.get_content() for m in inbox.messages if m["X-Univers-Notification"].startswith("contact_change")}
    link = re.compile(r"(/manager/contact-changes/\d+\?token=(cct_[A-Za-z0-9_-]+))")
    bobs, acmes = link.search(mails["bob@example.org"]), link.search(mails["ops@acme.example"])
    for subject, priority in (("Slow reverse DNS", "low"), ("Server unreachable", "urgent")):
        r = shop.client.post("/v1/support/tickets", headers=acme["headers"],
                             json={"service_id": server, "subject": subject, "message": f"{subject} since 09:40.",
                                   "priority": priority})
        assert r.status_code == 201, r.text
    with unit_of_work(shop.rt) as conn:
        _, agent = create_customer(conn, shop.rt, {"subsidiary": "FR", "name": "Support desk", "email": "sd@univers.example",
                                                   "language": "en_GB"}, is_staff=True, staff_role="support_agent")
    context = browser.new_context(locale="en-GB")
    page = context.new_page()

    page.goto(served + bobs.group(1))  # the mail's link: sign in first, then back to the change with its code
    page.wait_for_url(re.compile(r".*/manager/sign-in\?next=.*"))
    page.fill("input[name=key]", bob["headers"]["Authorization"][7:])
    page.click("form#with-key button[type=submit]")
    page.wait_for_url(re.compile(r".*/manager/contact-changes/\d+\?token=.*"))
    assert page.input_value("form#answer-change input[name=token]") == bobs.group(2)
    assert "Technical contact" in page.inner_text("table#change")
    _shot(page, "contact-change", engine_name)
    page.click("form#answer-change button[value=accept]")
    page.wait_for_selector("#answered")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{served}/manager/sign-in")

    _sign_in(page, served, acme["headers"]["Authorization"][7:])
    page.wait_for_url(f"{served}/manager/")
    assert "Bob" not in page.inner_text("table#services")
    _shot(page, "services-waiting-change", engine_name)
    page.click("#waiting-changes a")
    page.fill("form#answer-change input[name=token]", acmes.group(2))  # the code from its own mail
    page.click("form#answer-change button[value=accept]")
    page.wait_for_selector("#change-status >> text=Done")
    contacts = shop.client.get(f"/v1/services/{server}/contacts", headers=acme["headers"]).json()
    assert contacts["tech"]["handle"] == bob["handle"]
    assert page.goto(f"{served}/backoffice/support").status == 403
    page.goto(f"{served}/manager/")
    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{served}/manager/sign-in")

    _sign_in(page, served, agent)
    page.wait_for_url(f"{served}/backoffice/")
    page.click("nav >> text=Support")
    rows = page.locator("table#queue tbody tr")
    assert rows.count() == 2 and "Server unreachable" in rows.nth(0).inner_text()  # the closest deadline first
    _shot(page, "support-queue", engine_name)
    rows.nth(0).locator("a").first.click()
    page.fill("form#answer textarea[name=message]", "The customer's switch port flaps; checking with the DC.")
    page.check("form#answer input[name=internal]")
    page.click("form#answer button[type=submit]")
    page.wait_for_selector("#thread li.note")
    page.fill("form#answer textarea[name=message]", "We rebooted the switch port. Does it answer now?")
    page.select_option("form#answer select[name=status]", "waiting_for_customer")
    page.select_option("form#answer select[name=priority]", "high")
    page.click("form#answer button[type=submit]")
    page.wait_for_selector("#status >> text=Waiting for the customer's answer")
    assert page.inner_text("#priority") == "High"
    _shot(page, "staff-ticket", engine_name)
    ticket = int(re.search(r"/backoffice/tickets/(\d+)", page.url).group(1))
    seen = shop.client.get(f"/v1/support/tickets/{ticket}", headers=acme["headers"]).json()
    assert [e["message"] for e in seen["thread"] if e["kind"] == "agent_reply"] == ["We rebooted the switch port. Does it answer now?"]
    context.close()


def test_the_api_docs_render_under_their_content_security_policy_from_this_server_only(served, browser):
    """Swagger UI at /schema, its files from the package (core/api/security.py): the browser
    reports no policy violation and fetches nothing from another site."""
    page = browser.new_page()
    errors, elsewhere = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: elsewhere.append(r.url) if not r.url.startswith(served) and not r.url.startswith("data:") else None)
    page.goto(f"{served}/schema")
    page.wait_for_selector(".opblock", timeout=30000)  # the operations are listed
    assert page.locator(".opblock").count() > 20 and "Univers API" in page.title()
    assert errors == [] and elsewhere == []


def test_an_italian_customer_saves_its_einvoice_details_in_a_browser(shop, served, browser, engine_name):
    mario = shop.signup("IT", kind="person", name="Mario Bianchi", language="it_IT",
                        einvoice={"address": "Corso Buenos Aires 12", "postcode": "20124", "city": "Milano", "province": "MI"})
    page = browser.new_context(locale="it-IT").new_page()
    _sign_in(page, served, mario["headers"]["Authorization"][7:])
    page.wait_for_url(f"{served}/manager/")
    page.goto(f"{served}/manager/account")
    form = page.locator("form#einvoice")
    assert form.locator("input[name=city]").input_value() == "Milano"
    form.locator("input[name=codice_fiscale]").fill("BNCMRA80A01F205X")
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"{served}/manager/account")
    assert page.locator("form#einvoice input[name=codice_fiscale]").input_value() == "BNCMRA80A01F205X"
    _shot(page, "account-einvoice", engine_name)
    assert shop.client.get("/v1/me", headers=mario["headers"]).json()["einvoice"]["codice_fiscale"] == "BNCMRA80A01F205X"
