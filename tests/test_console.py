"""The web console through HTTP (the browser tests are in test_console_browser.py), on both
engines: sign-in with an API key and its CSRF double submit, the session cookie, one-click stop
and undo (a form without the session's token changes nothing), the order with its terms, the
PDF, the back office's refusals for customers and for roles without the right, sign-out and a
revoked key ending the session, and pages in the reader's language."""

from __future__ import annotations

import re

from sqlalchemy import select, update

from core.customers.accounts import create_customer
from core.models import ApiKey, Invoice, Service
from core.uow import unit_of_work

SERVER = "bm-ks-1-p1m"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _key(customer) -> str:
    return customer["headers"]["Authorization"][7:]


def _csrf(html: str) -> str:
    return CSRF.search(html).group(1)


def _sign_in(client, key: str):
    client.cookies.clear()
    form = client.get("/manager/sign-in")
    assert form.status_code == 200 and "text/html" in form.headers["content-type"]
    return client.post("/manager/sign-in", data={"csrf": _csrf(form.text), "key": key, "next": ""},
                       follow_redirects=False)


def _staff_key(shop, role) -> str:
    with unit_of_work(shop.rt) as conn:
        _, key = create_customer(conn, shop.rt, {"subsidiary": "FR", "name": f"{role} desk", "email": f"{role}@univers.example",
                                                 "language": "en_GB"}, is_staff=True, staff_role=role)
    return key


def test_signing_in_sets_a_session_cookie_and_a_forged_form_signs_nobody_in(shop):
    acme = shop.signup()
    c = shop.client
    forged = c.post("/manager/sign-in", data={"csrf": "x", "key": _key(acme)}, follow_redirects=False)
    assert forged.status_code == 303 and forged.headers["location"] == "/manager/sign-in"
    assert "univers_session" not in forged.headers.get("set-cookie", "")
    wrong = _sign_in(c, "uk_not-a-key")
    assert wrong.status_code == 401 and 'class="problem"' in wrong.text
    r = _sign_in(c, _key(acme))
    assert r.status_code == 303 and r.headers["location"] == "/manager/"
    cookie = r.headers["set-cookie"]
    assert "univers_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    page = c.get("/manager/")
    assert page.status_code == 200 and "Acme SAS" in page.text
    assert page.headers["content-type"] == "text/html; charset=utf-8"  # the charset once
    account = c.get("/manager/account")
    assert account.status_code == 200 and 'id="balance"' in account.text
    export = c.get("/manager/export")
    assert export.headers["content-disposition"].startswith("attachment;")
    assert export.json()["format"] == "univers-export" and export.json()["account"]["id"] == acme["id"]


def test_stop_and_undo_in_one_click_and_a_form_without_the_token_changes_nothing(shop):
    acme = shop.signup(top_up="100.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    c = shop.client
    _sign_in(c, _key(acme))
    listing = c.get("/manager/")
    assert f'id="service-{server}"' in listing.text
    refused = c.post(f"/manager/services/{server}/stop", data={"csrf": "forged"})
    assert refused.status_code == 403 and shop.service(acme, server)["renewal_mode"] == "automatic"
    token = _csrf(listing.text)
    row = c.post(f"/manager/services/{server}/stop", data={"csrf": token}, headers={"HX-Request": "true"})
    assert row.status_code == 200 and row.text.lstrip().startswith(f'<tr id="service-{server}"')
    assert shop.service(acme, server)["renewal_mode"] == "terminate" and "/undo" in row.text
    done = c.post(f"/manager/services/{server}/undo", data={"csrf": token}, follow_redirects=False)
    assert done.status_code == 303 and shop.service(acme, server)["renewal_mode"] == "automatic"
    assert c.get(f"/manager/services/{server}").status_code == 200
    other = shop.signup(name="Other SA")
    _sign_in(c, _key(other))
    assert c.get(f"/manager/services/{server}").status_code == 404  # not its service: nothing there
    assert c.post(f"/manager/services/{server}/stop", data={"csrf": _csrf(c.get('/manager/').text)}).status_code == 404


def test_an_order_accepts_its_terms_and_the_invoice_downloads_as_pdf(shop):
    acme = shop.signup(top_up="200.00")
    c = shop.client
    _sign_in(c, _key(acme))
    assert SERVER in c.get("/manager/catalog").text
    form = c.get(f"/manager/order/{SERVER}")
    assert form.status_code == 200
    fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form.text))
    before = shop.count(Service)
    unticked = c.post("/manager/order", data=fields)
    assert unticked.status_code == 422 and shop.count(Service) == before  # the terms were not accepted
    ordered = c.post("/manager/order", data={**fields, "agree": "1"}, follow_redirects=False)
    assert ordered.status_code == 303 and shop.count(Service) == before + 1
    assert c.post("/manager/order", data={**fields, "agree": "1"}).status_code == 200 and shop.count(Service) == before + 1
    invoices = c.get("/manager/invoices").text
    invoice_id = int(re.search(r'/manager/invoices/(\d+)/pdf', invoices).group(1))
    pdf = c.get(f"/manager/invoices/{invoice_id}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    other = shop.signup(name="Other SA")
    _sign_in(c, _key(other))
    assert c.get(f"/manager/invoices/{invoice_id}/pdf").status_code == 404


def test_a_customer_cannot_reach_the_back_office_and_a_role_acts_only_as_the_table_allows(shop):
    acme = shop.signup(top_up="200.00", email="ops@acme.example")
    order = shop.order(acme, SERVER)
    invoice_id = order["invoice"]["id"]
    c = shop.client
    _sign_in(c, _key(acme))
    assert c.get("/backoffice/").status_code == 403
    assert "/backoffice/" not in c.get("/manager/").text  # never shown to a customer
    _sign_in(c, _staff_key(shop, "support_agent"))
    found = c.get("/backoffice/", params={"q": "ops@acme.example"})
    assert found.status_code == 200 and f'/backoffice/customers/{acme["id"]}' in found.text
    assert c.get(f"/backoffice/customers/{acme['id']}").status_code == 200
    page = c.get(f"/backoffice/invoices/{invoice_id}")
    assert page.status_code == 200 and 'id="credit-note"' not in page.text  # a support agent issues no credit note
    posted = c.post(f"/backoffice/invoices/{invoice_id}/credit-notes",
                    data={"csrf": _csrf(page.text), "reason": "Goodwill", "key": "k1"})
    assert posted.status_code == 403 and shop.count(Invoice) == 1
    _sign_in(c, _staff_key(shop, "billing_operator"))
    page = c.get(f"/backoffice/invoices/{invoice_id}")
    line = re.search(r'name="line_(\d+)"', page.text).group(1)
    key = re.search(r'name="key" value="([^"]+)"', page.text).group(1)
    done = c.post(f"/backoffice/invoices/{invoice_id}/credit-notes",
                  data={"csrf": _csrf(page.text), "key": key, "reason": "Goodwill", f"line_{line}": "1.00"},
                  follow_redirects=False)
    assert done.status_code == 303 and shop.count(Invoice) == 2
    credit = c.get(done.headers["location"])
    assert credit.status_code == 200 and "Goodwill" in credit.text
    number = re.search(r"FRI?-\d{4}-\d{6}", c.get(f"/backoffice/customers/{acme['id']}").text).group(0)
    assert f"/backoffice/invoices/{invoice_id}" in c.get("/backoffice/", params={"q": number}).text


def test_signing_out_or_revoking_the_key_ends_the_session(shop):
    acme = shop.signup()
    c = shop.client
    _sign_in(c, _key(acme))
    home = c.get("/manager/")
    out = c.post("/manager/sign-out", data={"csrf": _csrf(home.text)}, follow_redirects=False)
    assert out.status_code == 303
    c.cookies.clear()
    again = _sign_in(c, _key(acme))
    assert again.status_code == 303
    keys = ApiKey.__table__
    with shop.rt.engine.begin() as conn:
        conn.execute(update(keys).where(keys.c.account_id == acme["id"]).values(revoked_at=shop.clock.now()))
    gone = c.get("/manager/", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/manager/sign-in")


def test_pages_come_in_the_readers_language_and_the_switcher_changes_it(shop):
    hans = shop.signup("DE", name="Hans GmbH", language="de_DE")
    c = shop.client
    _sign_in(c, _key(hans))
    assert "Meine Dienste" in c.get("/manager/").text
    switched = c.get("/manager/language/fr", params={"next": "/manager/"}, follow_redirects=False)
    assert switched.status_code == 303 and "univers_lang=fr" in switched.headers["set-cookie"]
    assert "Mes services" in c.get("/manager/").text
    assert c.get("/manager/language/xx", params={"next": "https://evil.example/"}).status_code == 200


def test_bad_input_in_the_console_is_a_4xx_page_never_a_500(shop):
    acme = shop.signup()
    c = shop.client
    _sign_in(c, _key(acme))
    token = _csrf(c.get("/manager/").text)
    for method, path, data in (("GET", "/manager/services/abc", None), ("GET", "/manager/services/99999999999999999999", None),
                               ("POST", "/manager/services/1/explode", {"csrf": token}),
                               ("GET", "/manager/order/no-such-plan", None), ("GET", "/manager/?after=-3", None),
                               ("GET", "/manager/invoices/0/pdf", None), ("GET", "/backoffice/customers/x", None)):
        r = c.request(method, path, data=data)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:200])
        assert "text/html" in r.headers["content-type"], path
    with shop.rt.engine.connect() as conn:
        assert conn.execute(select(Service.__table__.c.id)).first() is None


def test_a_read_only_key_browses_but_cannot_stop_a_service(shop):
    acme = shop.signup(top_up="100.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    r = shop.client.post("/v1/me/api-keys", headers=acme["headers"], json={"name": "viewer", "scopes": ["services:read"]})
    assert r.status_code == 201, r.text
    c = shop.client
    _sign_in(c, r.json()["secret"])
    listing = c.get("/manager/")
    assert listing.status_code == 200 and f'id="service-{server}"' in listing.text
    assert "/stop" not in listing.text  # not shown, and refused if posted
    refused = c.post(f"/manager/services/{server}/stop", data={"csrf": _csrf(listing.text)})
    assert refused.status_code == 403 and shop.service(acme, server)["renewal_mode"] == "automatic"
    assert c.get("/manager/invoices").status_code == 403  # billing:read is not among its scopes


def test_the_back_office_reports_and_settings_follow_the_roles(shop, clock):
    acme = shop.signup(email="ops@acme.example")
    shop.order(acme, SERVER, payment={"method": "test", "outcome": "pending"})  # a payment stuck in progress
    clock.advance(days=3)
    c = shop.client
    _sign_in(c, _staff_key(shop, "support_agent"))
    home = c.get("/backoffice/")
    assert "/backoffice/overdue" not in home.text and "/backoffice/staff" not in home.text
    assert c.get("/backoffice/overdue").status_code == 403 and c.get("/backoffice/staff").status_code == 403

    _sign_in(c, _staff_key(shop, "billing_operator"))
    overdue = c.get("/backoffice/overdue")
    assert overdue.status_code == 200 and "Payment pending: suspension blocked" in overdue.text
    runs = c.get("/backoffice/renewal-runs")
    assert "No run yet." in runs.text
    assert c.post("/backoffice/renewal-runs", data={"csrf": _csrf(runs.text)}).status_code == 200
    assert "No run yet." not in c.get("/backoffice/renewal-runs").text
    assert 'id="forecast-chart"' in c.get("/backoffice/forecast", params={"days": 30}).text
    chart = c.get("/backoffice/forecast.svg", params={"days": 30})
    assert chart.headers["content-type"].startswith("image/svg+xml") and chart.text.lstrip().startswith("<")
    assert c.get("/backoffice/forecast.svg", params={"days": 0}).status_code == 400
    assert c.get("/backoffice/catalog").status_code == 403  # the administrators' page

    _sign_in(c, _staff_key(shop, "administrator"))
    assert 'id="no-problems"' in c.get("/backoffice/catalog").text
    staff_page = c.get("/backoffice/staff")
    made = c.post("/backoffice/staff", data={"csrf": _csrf(staff_page.text), "name": "Ana", "email": "ana@univers.example",
                                             "role": "abuse_desk"})
    assert made.status_code == 201 and 'id="created"' in made.text
    key = re.search(r"<code>([^<]+)</code>", made.text).group(1)
    refused = c.post("/backoffice/staff", data={"csrf": _csrf(staff_page.text), "name": "X", "email": "x@univers.example",
                                                "role": "emperor"})
    assert refused.status_code == 422
    _sign_in(c, key)
    assert c.get("/backoffice/").status_code == 200 and c.get("/backoffice/overdue").status_code == 403


def test_a_one_time_link_by_mail_signs_in_once_and_says_nothing_of_unknown_addresses(shop, clock, inbox):
    from core.models import Notification
    from core.scheduler import run_queues

    shop.signup(email="ops@acme.example", language="fr_FR")
    c = shop.client
    c.cookies.clear()
    form = c.get("/manager/sign-in")
    token = _csrf(form.text)
    assert c.post("/manager/sign-in/link", data={"csrf": "forged", "email": "ops@acme.example"},
                  follow_redirects=False).status_code == 303
    unknown = c.post("/manager/sign-in/link", data={"csrf": token, "email": "nobody@example.org"})
    assert unknown.status_code == 200 and 'id="link-sent"' in unknown.text and shop.count(Notification) == 0
    asked = c.post("/manager/sign-in/link", data={"csrf": _csrf(unknown.text), "email": "ops@acme.example"},
                   headers={"Host": "evil.example"})
    assert asked.status_code == 200 and asked.text.count('id="link-sent"') == 1
    run_queues(shop.rt)
    (mail,) = [m for m in inbox.messages if m["X-Univers-Notification"] == "sign_in_link"]
    text = mail.get_content()
    assert mail["To"] == "ops@acme.example" and "dans les 15 minutes" in text and mail["Subject"] == "Votre lien de connexion"
    link = re.search(r"(http://\S+/manager/sign-in/link/(\S+))", text)
    assert link.group(1).startswith(shop.rt.settings.base_url) and "evil.example" not in text
    with shop.rt.engine.connect() as conn:
        kept = conn.execute(select(Notification.__table__.c.body).where(
            Notification.__table__.c.kind == "sign_in_link")).scalar_one()
    assert link.group(2) not in kept  # the copy kept after sending has no token

    path = f"/manager/sign-in/link/{link.group(2)}"
    page = c.get(path)  # opening the link (a mail scanner does) signs nobody in
    assert page.status_code == 200 and "univers_session" not in page.headers.get("set-cookie", "")
    used = c.post(path, data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert used.status_code == 303 and "univers_session=" in used.headers["set-cookie"]
    assert "Acme SAS" in c.get("/manager/").text
    c.cookies.clear()
    again = c.get(path)
    assert c.post(path, data={"csrf": _csrf(again.text)}).status_code == 410  # once

    for _ in range(4):  # at most three unused links at a time
        fresh = c.get("/manager/sign-in")
        c.post("/manager/sign-in/link", data={"csrf": _csrf(fresh.text), "email": "ops@acme.example"})
    assert shop.count(Notification) == 1 + 3
    clock.advance(minutes=16)
    run_queues(shop.rt)
    late = [m for m in inbox.messages if m["X-Univers-Notification"] == "sign_in_link"][-1]
    late_path = re.search(r"/manager/sign-in/link/\S+", late.get_content()).group(0)
    late_page = c.get(late_path)
    assert c.post(late_path, data={"csrf": _csrf(late_page.text)}).status_code == 410  # expired


def test_a_service_page_shows_its_contacts_pending_changes_and_a_projects_month(shop):
    from tests.test_rating import PROJECT, hourly, send

    acme = shop.signup(top_up="100.00")
    bob = shop.signup(name="Bob SARL")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    project = shop.order(acme, PROJECT)["services"][0]["id"]
    shop.deliver()
    r = shop.client.post(f"/v1/services/{server}/contact-changes", headers=acme["headers"],
                         json={"role": "tech", "to": bob["handle"]})
    assert r.status_code == 201, r.text
    send(shop.client, acme, hourly(project, "vm", range(10)))
    c = shop.client
    _sign_in(c, _key(acme))
    page = c.get(f"/manager/services/{server}").text
    assert 'id="contacts"' in page and acme["handle"] in page
    assert f"Contact technique : {acme['handle']} → {bob['handle']}" in page  # the role in words, in Acme's French
    assert "/manager/contact-changes/" in page  # acme holds the role: its answer is asked
    usage = c.get(f"/manager/services/{project}").text
    assert 'id="usage"' in usage and 'id="contact-changes"' not in usage
    month = shop.client.get(f"/v1/services/{project}/consumption", headers=acme["headers"]).json()
    assert month["total"]["formatted"].replace("\xa0", " ") in usage.replace("\xa0", " ")


def test_a_service_page_shows_the_newest_events_of_a_long_history_first(shop):
    acme = shop.signup(top_up="100.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    for _ in range(60):  # 120 events: more than one page of the log
        assert shop.client.post(f"/v1/services/{server}/stop", headers=acme["headers"]).status_code == 200
        assert shop.client.delete(f"/v1/services/{server}/stop", headers=acme["headers"]).status_code == 200
    log = []
    after = 0
    while page := shop.client.get(f"/v1/services/{server}/events?after={after}", headers=acme["headers"]).json():
        log += page
        after = page[-1]["id"]
    assert len(log) > 120
    c = shop.client
    _sign_in(c, _key(acme))
    html = c.get(f"/manager/services/{server}").text
    history = html[html.index('id="history"'):]
    shown = re.findall(r'<td title="([a-z_.]+)">([^<]*)</td>', history)
    actions = [code for code, _ in shown]
    assert len(actions) == 50
    assert actions == [e["action"] for e in reversed(log[-50:])]  # newest first, the newest included
    from core.i18n import translate
    from core.labels import AUDIT_ACTIONS

    words = {code: word for code, word in shown}
    assert set(words) == {"service.stop_scheduled", "service.stop_cancelled"}
    for code, word in words.items():  # in words, in Acme's French
        assert word == translate(AUDIT_ACTIONS[code], "fr") != AUDIT_ACTIONS[code], (code, word)


def test_the_invoice_list_filters_and_pages_and_refuses_a_bad_date(shop):
    acme = shop.signup(top_up="300.00")
    first = shop.order(acme, SERVER)["invoice"]["id"]
    shop.order(acme, SERVER)
    c = shop.client
    _sign_in(c, _staff_key(shop, "billing_operator"))
    everything = c.get("/backoffice/invoices")
    assert everything.status_code == 200 and everything.text.count("/backoffice/invoices/") >= 2
    assert f"/backoffice/invoices/{first}" in c.get("/backoffice/invoices", params={"kind": "order", "storefront": "FR"}).text
    assert "/backoffice/invoices/" not in c.get("/backoffice/invoices", params={"kind": "credit_note"}).text.split("</thead>")[1]
    assert "/backoffice/invoices/" not in c.get("/backoffice/invoices", params={"issued_to": "2025-12-31"}).text.split("</thead>")[1]
    assert c.get("/backoffice/invoices", params={"issued_from": "yesterday"}).status_code == 422
    assert f"/backoffice/invoices/{first}" not in c.get("/backoffice/invoices", params={"after": first}).text
    _sign_in(c, _staff_key(shop, "abuse_desk"))
    assert c.get("/backoffice/invoices").status_code == 403  # the abuse desk reads no invoices


def test_the_account_page_creates_a_narrow_key_shown_once_and_revokes_it(shop):
    acme = shop.signup()
    c = shop.client
    _sign_in(c, _key(acme))
    page = c.get("/manager/account")
    made = c.post("/manager/account/keys", data={"csrf": _csrf(page.text), "name": "monitoring",
                                                  "scope_services:read": "1"})
    assert made.status_code == 201 and 'id="created"' in made.text
    secret = re.search(r'id="created">[^<]*<code>([^<]+)</code>', made.text).group(1)
    assert shop.client.get("/v1/services", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    assert shop.client.get("/v1/invoices", headers={"Authorization": f"Bearer {secret}"}).status_code == 403
    assert secret not in c.get("/manager/account").text  # shown once
    key_id = max(int(i) for i in re.findall(r"/manager/account/keys/(\d+)/revoke", made.text))
    assert c.post(f"/manager/account/keys/{key_id}/revoke", data={"csrf": "forged"}).status_code == 403
    done = c.post(f"/manager/account/keys/{key_id}/revoke", data={"csrf": _csrf(page.text)}, follow_redirects=False)
    assert done.status_code == 303
    assert shop.client.get("/v1/services", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_a_ticket_is_opened_read_and_answered_from_the_manager_without_the_internal_notes(shop):
    acme = shop.signup(top_up="100.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    c = shop.client
    _sign_in(c, _key(acme))
    service = c.get(f"/manager/services/{server}")
    token = _csrf(service.text)
    assert c.post(f"/manager/services/{server}/tickets", data={"csrf": "forged", "subject": "Down",
                                                               "message": "No ping."}).status_code == 403
    opened = c.post(f"/manager/services/{server}/tickets", data={"csrf": token, "subject": "Down", "message": "No ping.",
                                                                 "priority": "high"}, follow_redirects=False)
    assert opened.status_code == 303
    ticket_id = int(opened.headers["location"].rsplit("/", 1)[1])
    staff = shop.staff()
    for body in ({"message": "Customer kernel is old.", "internal": True}, {"message": "Rebooted the switch port."}):
        assert shop.client.post(f"/v1/staff/support/tickets/{ticket_id}/answers", headers=staff, json=body).status_code == 200
    page = c.get(f"/manager/tickets/{ticket_id}").text
    assert "No ping." in page and "Rebooted the switch port." in page and "kernel is old" not in page
    assert 'id="clocks"' in page
    replied = c.post(f"/manager/tickets/{ticket_id}/messages", data={"csrf": token, "message": "Works, thanks."},
                     follow_redirects=False)
    assert replied.status_code == 303 and "Works, thanks." in c.get(f"/manager/tickets/{ticket_id}").text
    assert c.post(f"/manager/tickets/{ticket_id}/messages", data={"csrf": token, "message": ""}).status_code == 422
    assert f"/manager/tickets/{ticket_id}" in c.get(f"/manager/services/{server}").text
    other = shop.signup(name="Other SA")
    _sign_in(c, _key(other))
    assert c.get(f"/manager/tickets/{ticket_id}").status_code == 404


def test_a_page_of_invoices_costs_the_same_statements_for_two_invoices_as_for_six(shop):
    from sqlalchemy import event

    def statements(path: str) -> int:
        seen = []
        listener = lambda *args: seen.append(1)  # noqa: E731
        event.listen(shop.rt.engine, "before_cursor_execute", listener)
        try:
            assert c.get(path).status_code == 200
        finally:
            event.remove(shop.rt.engine, "before_cursor_execute", listener)
        return len(seen)

    acme = shop.signup(top_up="900.00")
    c = shop.client
    _sign_in(c, _key(acme))
    for _ in range(2):
        shop.order(acme, SERVER)
    two = statements("/manager/invoices")
    _sign_in(c, _staff_key(shop, "billing_operator"))
    staff_two = statements("/backoffice/invoices"), statements(f"/backoffice/customers/{acme['id']}")
    for _ in range(4):
        shop.order(acme, SERVER)
    assert (statements("/backoffice/invoices"), statements(f"/backoffice/customers/{acme['id']}")) == staff_two
    _sign_in(c, _key(acme))
    assert statements("/manager/invoices") == two


# --- contact changes answered in the Manager -----------------------------------------------------

CHANGE_LINK = re.compile(r"http://\S+(/manager/contact-changes/(\d+)\?token=(cct_[A-Za-z0-9_-]+))")


def _change_links(shop, inbox) -> dict[str, re.Match]:
    """Send what is queued: the console link of each contact change mail, by recipient."""
    from core.scheduler import run_queues

    run_queues(shop.rt)
    return {m["To"]: CHANGE_LINK.search(m.get_content()) for m in inbox.messages
            if m["X-Univers-Notification"] in ("contact_change_from", "contact_change_to")}


def test_both_accounts_answer_a_contact_change_in_the_manager_and_the_contact_moves(shop, inbox):
    acme = shop.signup(top_up="100.00", email="ops@acme.example", language="en_GB")
    bob = shop.signup(name="Bob SARL", email="bob@example.org", language="en_GB")
    carol = shop.signup(name="Carol SA", email="carol@example.org", language="en_GB")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    r = shop.client.post(f"/v1/services/{server}/contact-changes", headers=acme["headers"],
                         json={"role": "tech", "to": bob["handle"]})
    change = r.json()["id"]
    links = _change_links(shop, inbox)
    mine, his = links["ops@acme.example"], links["bob@example.org"]
    assert int(his.group(2)) == change and his.group(1).startswith(f"/manager/contact-changes/{change}?token=")
    c = shop.client
    c.cookies.clear()
    away = c.get(his.group(1), follow_redirects=False)  # not signed in: to the sign-in page, and back here after it
    assert away.status_code == 303 and "next=" in away.headers["location"]
    form = c.get(away.headers["location"])
    signed = c.post("/manager/sign-in", data={"csrf": _csrf(form.text), "key": _key(bob),
                                              "next": re.search(r'name="next" value="([^"]*)"', form.text).group(1)
                                              .replace("&amp;", "&")}, follow_redirects=False)
    assert signed.headers["location"] == his.group(1)
    home = c.get("/manager/")
    assert 'id="waiting-changes"' in home.text and f"/manager/contact-changes/{change}" in home.text
    page = c.get(his.group(1))
    assert page.status_code == 200 and f'value="{his.group(3)}"' in page.text and 'id="answer-change"' in page.text
    assert "Technical contact" in page.text
    token = _csrf(page.text)
    assert c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": "forged", "token": his.group(3),
                                                                     "answer": "accept"}).status_code == 403
    theirs = c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": token, "token": mine.group(3), "answer": "accept"})
    assert theirs.status_code == 403 and 'data-code="token_wrong_account"' in theirs.text
    done = c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": token, "token": his.group(3), "answer": "accept"},
                  follow_redirects=False)
    assert done.status_code == 303
    after = c.get(f"/manager/contact-changes/{change}").text
    assert 'id="answered"' in after and 'id="answer-change"' not in after
    assert 'id="waiting-changes"' not in c.get("/manager/").text

    _sign_in(c, _key(carol))  # neither side, no role on the service: nothing there
    assert c.get(f"/manager/contact-changes/{change}").status_code == 404
    assert c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": _csrf(c.get("/manager/").text),
                                                                     "token": his.group(3), "answer": "refuse"}).status_code == 404

    _sign_in(c, _key(acme))  # the holder answers from the service's page
    service = c.get(f"/manager/services/{server}").text
    assert f'href="/manager/contact-changes/{change}">Answer' in service
    page = c.get(f"/manager/contact-changes/{change}")
    assert c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": _csrf(page.text), "token": mine.group(3),
                                                                     "answer": "accept"}).status_code == 200
    assert "Done" in c.get(f"/manager/contact-changes/{change}").text
    contacts = shop.client.get(f"/v1/services/{server}/contacts", headers=acme["headers"]).json()
    assert contacts["tech"]["handle"] == bob["handle"] and contacts["pending"] == []


def test_a_contact_change_refused_in_the_manager_moves_nothing_and_a_read_only_key_cannot_answer(shop, inbox):
    acme = shop.signup(top_up="100.00", email="ops@acme.example", language="en_GB")
    bob = shop.signup(name="Bob SARL", email="bob@example.org", language="en_GB")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    change = shop.client.post(f"/v1/services/{server}/contact-changes", headers=acme["headers"],
                              json={"role": "billing", "to": bob["handle"]}).json()["id"]
    his = _change_links(shop, inbox)["bob@example.org"]
    viewer = shop.client.post("/v1/me/api-keys", headers=bob["headers"], json={"name": "v", "scopes": ["services:read"]})
    c = shop.client
    _sign_in(c, viewer.json()["secret"])
    page = c.get(his.group(1))
    assert page.status_code == 200
    refused = c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": _csrf(page.text), "token": his.group(3),
                                                                        "answer": "accept"})
    assert refused.status_code == 403 and 'data-code="scope_missing"' in refused.text
    _sign_in(c, _key(bob))
    page = c.get(his.group(1))
    assert c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": _csrf(page.text), "token": his.group(3),
                                                                     "answer": "maybe"}).status_code == 422
    assert c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": _csrf(page.text), "token": "cct_wrong",
                                                                     "answer": "accept"}).status_code == 422
    assert c.post(f"/manager/contact-changes/{change}/answer", data={"csrf": _csrf(page.text), "token": his.group(3),
                                                                     "answer": "refuse"}).status_code == 200
    assert "Refused" in c.get(f"/manager/contact-changes/{change}").text
    contacts = shop.client.get(f"/v1/services/{server}/contacts", headers=acme["headers"]).json()
    assert contacts["billing"]["handle"] == acme["handle"] and contacts["pending"] == []


# --- the back office's support queues ------------------------------------------------------------


def _open_ticket(shop, customer, service, subject, priority="normal") -> int:
    r = shop.client.post("/v1/support/tickets", headers=customer["headers"],
                         json={"service_id": service, "subject": subject, "message": f"{subject}: details.", "priority": priority})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_the_support_queue_puts_the_closest_deadline_first_in_keyset_pages(shop, monkeypatch):
    from core.console import staff_support

    acme = shop.signup(top_up="100.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    low = _open_ticket(shop, acme, server, "Slow console", "low")
    urgent = _open_ticket(shop, acme, server, "Server down", "urgent")
    c = shop.client
    _sign_in(c, _key(acme))
    assert c.get("/backoffice/support").status_code == 403  # a customer: not the back office
    _sign_in(c, _staff_key(shop, "billing_operator"))
    home = c.get("/backoffice/")
    assert 'href="/backoffice/support"' in home.text  # every staff role reads tickets (ticket.read)
    queue = c.get("/backoffice/support").text
    assert queue.index(f"/backoffice/tickets/{urgent}") < queue.index(f"/backoffice/tickets/{low}")
    assert "Urgent" in queue and "Acme SAS" in queue and "first_response" not in queue
    monkeypatch.setattr(staff_support, "PAGE", 1)
    first = c.get("/backoffice/support")
    assert f"/backoffice/tickets/{urgent}" in first.text and f"/backoffice/tickets/{low}" not in first.text
    following = re.search(r'id="next-page" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = c.get(following)
    assert f"/backoffice/tickets/{low}" in second.text and f"/backoffice/tickets/{urgent}" not in second.text
    assert c.get("/backoffice/support", params={"cursor": "yesterday|1"}).status_code == 422
    by_status = c.get("/backoffice/support", params={"status": "new"}).text
    assert f"/backoffice/tickets/{low}" in by_status
    assert f"/backoffice/tickets/{low}" not in c.get("/backoffice/support", params={"status": "solved"}).text
    assert "No ticket here." in c.get("/backoffice/support", params={"queue": "abuse"}).text


def test_an_agent_answers_notes_and_sets_status_and_priority_and_other_roles_are_refused(shop):
    acme = shop.signup(top_up="100.00", language="en_GB")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    ticket = _open_ticket(shop, acme, server, "Server down")
    c = shop.client
    _sign_in(c, _staff_key(shop, "billing_operator"))  # reads the queue, answers nothing
    page = c.get(f"/backoffice/tickets/{ticket}")
    assert page.status_code == 200 and 'id="answer"' not in page.text
    refused = c.post(f"/backoffice/tickets/{ticket}/answers", data={"csrf": _csrf(page.text), "message": "Hello"})
    assert refused.status_code == 403
    _sign_in(c, _key(acme))  # a customer posting a staff action
    assert c.post(f"/backoffice/tickets/{ticket}/answers", data={"csrf": _csrf(c.get("/manager/").text),
                                                                 "message": "I answer myself"}).status_code == 403

    _sign_in(c, _staff_key(shop, "support_agent"))
    page = c.get(f"/backoffice/tickets/{ticket}")
    assert 'id="answer"' in page.text and "Server down: details." in page.text
    token = _csrf(page.text)
    assert c.post(f"/backoffice/tickets/{ticket}/answers", data={"csrf": "forged", "message": "x"}).status_code == 403
    assert c.post(f"/backoffice/tickets/{ticket}/answers", data={"csrf": token}).status_code == 422  # nothing said
    assert c.post(f"/backoffice/tickets/{ticket}/answers", data={"csrf": token, "status": "lost"}).status_code == 422
    noted = c.post(f"/backoffice/tickets/{ticket}/answers", data={"csrf": token, "message": "Customer's kernel is old.",
                                                                   "internal": "1"}, follow_redirects=False)
    assert noted.status_code == 303
    answered = c.post(f"/backoffice/tickets/{ticket}/answers",
                      data={"csrf": token, "message": "Which kernel do you run?", "status": "waiting_for_customer",
                            "priority": "high"})
    assert answered.status_code == 200
    staff_view = answered.text
    assert "Customer&#39;s kernel is old." in staff_view and "Which kernel do you run?" in staff_view
    assert "Waiting for the customer&#39;s answer" in staff_view and '<td id="priority">High</td>' in staff_view
    assert "Internal note" in staff_view

    _sign_in(c, _key(acme))
    mine = c.get(f"/manager/tickets/{ticket}").text
    assert "Which kernel do you run?" in mine and "kernel is old" not in mine  # the note stays with staff
    assert '<td id="status">Waiting for the customer&#39;s answer</td>' in mine


def test_the_abuse_desk_decides_its_case_and_a_support_agent_cannot(shop):
    acme = shop.signup(top_up="100.00")
    server = shop.order(acme, SERVER)["services"][0]["id"]
    shop.deliver()
    desk = _staff_key(shop, "abuse_desk")
    r = shop.client.post(f"/v1/services/{server}/abuse-suspension", headers={"Authorization": f"Bearer {desk}"},
                         json={"reason": "Port scans from this server."})
    assert r.status_code == 200, r.text
    c = shop.client
    _sign_in(c, _staff_key(shop, "support_agent"))
    assert "No ticket here." in c.get("/backoffice/support", params={"queue": "abuse"}).text  # its clocks wait for the customer
    queue = c.get("/backoffice/support", params={"queue": "abuse", "status": "waiting_for_customer"}).text
    case = int(re.search(r"/backoffice/tickets/(\d+)", queue).group(1))
    page = c.get(f"/backoffice/tickets/{case}")
    assert 'id="answer"' not in page.text and 'id="decision"' not in page.text
    assert c.post(f"/backoffice/tickets/{case}/decision", data={"csrf": _csrf(page.text), "decision": "lifted"}
                  ).status_code == 403
    assert shop.service(acme, server)["abuse"] is not None
    _sign_in(c, desk)
    page = c.get(f"/backoffice/tickets/{case}")
    assert 'id="decision"' in page.text and 'value="solved"' not in page.text  # a case closes by a decision only
    done = c.post(f"/backoffice/tickets/{case}/decision", data={"csrf": _csrf(page.text), "decision": "lifted",
                                                                "message": "Cleaned up, thanks."})
    assert done.status_code == 200 and "Suspension lifted" in done.text and 'id="decision"' not in done.text
    assert shop.service(acme, server)["abuse"] is None


def test_staff_download_a_customers_invoice_as_pdf_as_the_api_allows(shop):
    acme = shop.signup(top_up="200.00")
    invoice_id = shop.order(acme, SERVER)["invoice"]["id"]
    c = shop.client
    _sign_in(c, _key(acme))
    assert c.get(f"/backoffice/invoices/{invoice_id}/pdf").status_code == 403  # a customer: its own are under /manager/
    _sign_in(c, _staff_key(shop, "billing_operator"))
    assert f"/backoffice/invoices/{invoice_id}/pdf" in c.get(f"/backoffice/invoices/{invoice_id}").text
    pdf = c.get(f"/backoffice/invoices/{invoice_id}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and "attachment" in pdf.headers["content-disposition"]
    api = shop.client.get(f"/v1/invoices/{invoice_id}/pdf", headers=acme["headers"])
    assert pdf.headers["content-type"] == api.headers["content-type"]
    assert c.get("/backoffice/invoices/999999/pdf").status_code == 404
    _sign_in(c, _staff_key(shop, "abuse_desk"))  # the abuse desk reads no invoices, here as in the API
    assert c.get(f"/backoffice/invoices/{invoice_id}/pdf").status_code == 403


def test_a_tickets_codes_and_times_are_words_and_wall_clock_times_in_the_readers_language(shop, clock):
    hans = shop.signup("DE", name="Hans GmbH", language="de_DE", top_up="100.00")
    server = shop.order(hans, SERVER)["services"][0]["id"]
    shop.deliver()
    ticket = _open_ticket(shop, hans, server, "Kein Ping", "high")
    c = shop.client
    _sign_in(c, _key(hans))
    page = c.get(f"/manager/tickets/{ticket}").text
    for code in ("first_response", "running", "new", ">high<", "baremetal"):
        assert code not in page, code
    assert "Erstreaktion" in page and "Läuft" in page and "Hoch" in page
    assert "(Deutschland (Berlin) (Ortszeit))" in page  # the storefront's wall clock, named
    opened = clock.now().astimezone(__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    assert f"{opened:%d.%m.%Y}, {opened:%H:%M}" in page  # a date and a time, not a day alone
    service = c.get(f"/manager/services/{server}").text
    assert "Administrativer Kontakt" in service and "<td>admin</td>" not in service


def test_an_italian_customer_corrects_its_einvoice_details_in_the_manager(shop):
    mario = shop.signup("IT", kind="person", name="Mario Bianchi",
                        einvoice={"address": "Corso Buenos Aires 12", "postcode": "20124", "city": "Milano", "province": "MI"})
    c = shop.client
    _sign_in(c, _key(mario))
    page = c.get("/manager/account")
    assert 'id="einvoice"' in page.text and 'value="Milano"' in page.text
    assert "Codice fiscale" in page.text or "codice fiscale" in page.text  # the fields in words, in Mario's Italian
    form = {"csrf": _csrf(page.text), "codice_fiscale": "BNCMRA80A01F205X", "address": "Corso Buenos Aires 12",
            "postcode": "20124", "city": "Milano", "province": "MI"}
    r = c.post("/manager/account/einvoice", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/manager/account"
    me = shop.client.get("/v1/me", headers=mario["headers"]).json()
    assert me["einvoice"]["codice_fiscale"] == "BNCMRA80A01F205X" and me["einvoice"]["city"] == "Milano"
    bad = c.post("/manager/account/einvoice", data={**form, "province": "Milano"}, follow_redirects=False)
    assert bad.status_code == 422 and 'class="problem"' in bad.text
    assert shop.client.get("/v1/me", headers=mario["headers"]).json()["einvoice"]["province"] == "MI"  # unchanged
    forged = c.post("/manager/account/einvoice", data={**form, "csrf": "x"}, follow_redirects=False)
    assert forged.status_code in (303, 403)
    french = shop.signup("FR")
    c2 = shop.client
    _sign_in(c2, _key(french))
    assert 'id="einvoice"' not in c2.get("/manager/account").text  # the French storefront asks none
