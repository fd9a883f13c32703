"""The console in a real browser: Playwright drives Debian's Chromium (``/usr/bin/chromium``; the
browser is never downloaded) against the application served by uvicorn, on both engines. A
customer signs in, orders a server accepting the terms, stops it and undoes the stop in one click
each (htmx swaps the row), downloads an invoice's PDF, and is refused the back office; a billing
operator finds the customer and issues a credit note. Screenshots of the main pages are saved in
``var/screenshots/``.

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
    with page.expect_response(lambda r: "/backoffice/forecast.svg" in r.url) as chart:
        page.click("nav >> text=Forecast")
    assert chart.value.status == 200 and chart.value.header_value("content-type").startswith("image/svg+xml")
    page.wait_for_load_state("load")
    _shot(page, "forecast", engine_name)
    page.click("nav >> text=Overdue")
    _shot(page, "overdue", engine_name)
    context.close()
