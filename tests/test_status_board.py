"""The work board, on both engines: staff publish an incident on a universe's products and
storefronts; anyone reads it without a key, in their language, and in an Atom feed; each service it
touches links to it (a Public Cloud project does, a web hosting does not); each step is audited;
and whoever follows the board gets one mail per update, in their own language."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from sqlalchemy import event, select

from core.customers.accounts import create_customer
from core.models import AuditEvent, Incident, IncidentUpdate, Notification
from core.scheduler import run_queues
from core.uow import unit_of_work

PROJECT = "pci-project-p1m"  # a Public Cloud project (free)
HOSTING = "web-hosting-starter-p1m"
ATOM = "{http://www.w3.org/2005/Atom}"
OUTAGE = {"universe": "publiccloud", "kind": "incident", "products": ["pci-project"],
          "title": {"en": "Instances unreachable in GRA", "fr": "Instances injoignables à GRA"},
          "text": {"en": "A network switch failed; we are looking into it.", "fr": "Un commutateur est en panne ; nous cherchons."}}


def _staff(shop, role="support_agent"):
    with unit_of_work(shop.rt) as conn:
        _, key = create_customer(conn, shop.rt, {"subsidiary": "FR", "name": role, "email": f"{role}@univers.example"},
                                 is_staff=True, staff_role=role)
    return {"Authorization": f"Bearer {key}"}


def _open(shop, agent, body=OUTAGE, **headers):
    r = shop.client.post("/v1/staff/status/incidents", json=body, headers={**agent, **headers})
    assert r.status_code in (200, 201), r.text
    return r.json()


def _customer_with_both(shop, **signup):
    customer = shop.signup(top_up="50.00", **signup)
    project = shop.order(customer, PROJECT)["services"][0]["id"]
    hosting = shop.order(customer, HOSTING)["services"][0]["id"]
    shop.deliver()
    return customer, project, hosting


def test_an_incident_on_publiccloud_shows_on_its_projects_and_not_on_a_web_hosting(shop):
    customer, project, hosting = _customer_with_both(shop)
    incident = _open(shop, _staff(shop))
    links = shop.service(customer, project)["incidents"]  # in the customer's language (French)
    assert links == [{"id": incident["id"], "kind": "incident", "status": "investigating",
                      "title": "Instances injoignables à GRA", "url": f"/v1/status/{incident['id']}"}]
    assert shop.service(customer, hosting)["incidents"] == []
    page = {s["id"]: s["incidents"] for s in shop.client.get("/v1/services", headers=customer["headers"]).json()["items"]}
    assert [i["id"] for i in page[project]] == [incident["id"]] and page[hosting] == []
    # the link leads to the incident, readable without a key
    r = shop.client.get(links[0]["url"])
    assert r.status_code == 200 and r.json()["title"] == "Instances unreachable in GRA"


def test_a_resolved_incident_leaves_the_services_and_stays_a_week_on_the_board(shop, clock):
    customer, project, _ = _customer_with_both(shop)
    agent = _staff(shop)
    incident = _open(shop, agent)
    r = shop.client.post(f"/v1/staff/status/incidents/{incident['id']}/resolve", headers=agent,
                         json={"text": {"en": "The switch is replaced."}})
    assert r.status_code == 200 and r.json()["status"] == "resolved" and r.json()["resolved_at"]
    assert shop.service(customer, project)["incidents"] == []
    assert [i["status"] for i in shop.client.get("/v1/status").json()] == ["resolved"]
    clock.advance(days=8)
    assert shop.client.get("/v1/status").json() == []
    assert shop.client.get(f"/v1/status/{incident['id']}").json()["status"] == "resolved"  # its page stays


def test_the_services_of_a_page_find_their_incidents_in_one_query(shop, rt):
    customer = shop.signup(top_up="80.00")
    for plan in (PROJECT, PROJECT, HOSTING, HOSTING, PROJECT):
        shop.order(customer, plan)
    shop.deliver()
    _open(shop, _staff(shop))
    statements = []
    listen = lambda conn, cursor, statement, *args: statements.append(statement)  # noqa: E731
    event.listen(rt.engine, "before_cursor_execute", listen)
    try:
        items = shop.client.get("/v1/services", headers=customer["headers"]).json()["items"]
    finally:
        event.remove(rt.engine, "before_cursor_execute", listen)
    assert [len(s["incidents"]) for s in items] == [1, 1, 0, 0, 1]
    assert sum("status_incident" in s for s in statements) == 1


def test_the_storefronts_of_an_incident_bound_where_it_shows(shop):
    customer, project, _ = _customer_with_both(shop)  # a French customer
    incident = _open(shop, _staff(shop), {**OUTAGE, "storefronts": ["de"]})
    assert incident["storefronts"] == ["DE"]
    assert shop.service(customer, project)["incidents"] == []
    assert [i["id"] for i in shop.client.get("/v1/status?storefront=DE").json()] == [incident["id"]]
    assert shop.client.get("/v1/status?storefront=FR").json() == []
    assert shop.client.get("/v1/status?universe=web").json() == []
    r = shop.client.get("/v1/status?storefront=XX")
    assert r.status_code == 422 and r.json()["code"] == "unknown_storefront"


def test_the_board_speaks_the_readers_language_and_staff_texts_fall_back_to_english(shop):
    agent = _staff(shop)
    incident = _open(shop, agent)
    fr = shop.client.get("/v1/status", headers={"Accept-Language": "fr-FR"}).json()[0]
    assert (fr["title"], fr["status_label"], fr["kind_label"]) == ("Instances injoignables à GRA", "Analyse en cours", "Incident")
    assert fr["latest"]["language"] == "fr" and fr["latest"]["text"].startswith("Un commutateur")
    de = shop.client.get(f"/v1/status/{incident['id']}", headers={"Accept-Language": "de"}).json()
    assert (de["title"], de["status_label"], de["kind_label"]) == ("Instances unreachable in GRA", "Wird untersucht", "Störung")
    assert [u["language"] for u in de["updates"]] == ["en"]


def test_the_atom_feed_is_atom_and_lists_the_incident(shop):
    incident = _open(shop, _staff(shop))
    r = shop.client.get("/v1/status/feed.atom")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/atom+xml")
    feed = ET.fromstring(r.content)
    assert feed.tag == f"{ATOM}feed"
    assert feed.find(f"{ATOM}id").text.endswith("/v1/status/feed.atom") and feed.find(f"{ATOM}title").text
    assert feed.find(f"{ATOM}updated").text.endswith("Z") and feed.find(f"{ATOM}author/{ATOM}name").text
    (entry,) = feed.findall(f"{ATOM}entry")
    assert entry.find(f"{ATOM}id").text.endswith(f"/v1/status/{incident['id']}")
    assert "Instances unreachable in GRA" in entry.find(f"{ATOM}title").text
    assert entry.find(f"{ATOM}updated").text.endswith("Z")
    assert entry.find(f"{ATOM}content").text.startswith("A network switch failed")
    assert [c.get("term") for c in entry.findall(f"{ATOM}category")] == ["publiccloud", "pci-project"]
    # RFC 4287: ids are absolute IRIs, dates RFC 3339, one id, title and updated each
    for element in (feed, entry):
        assert urlsplit(element.find(f"{ATOM}id").text).scheme in ("http", "https")
        assert dt.datetime.fromisoformat(element.find(f"{ATOM}updated").text).tzinfo is not None
        assert [len(element.findall(f"{ATOM}{tag}")) for tag in ("id", "title", "updated")] == [1, 1, 1]
    assert feed.find(f"{ATOM}link[@rel='self']").get("href").endswith("/v1/status/feed.atom")
    web = ET.fromstring(shop.client.get("/v1/status/feed.atom?universe=web").content)
    assert web.findall(f"{ATOM}entry") == [] and web.find(f"{ATOM}updated").text


def test_only_support_agents_and_administrators_publish_and_each_step_is_audited(shop, rt):
    customer = shop.signup()
    assert shop.client.post("/v1/staff/status/incidents", json=OUTAGE, headers=customer["headers"]).status_code == 403
    assert shop.client.post("/v1/staff/status/incidents", json=OUTAGE).status_code == 401
    assert shop.client.post("/v1/staff/status/incidents", json=OUTAGE, headers=_staff(shop, "billing_operator")).status_code == 403
    agent = _staff(shop)
    incident = _open(shop, agent)
    r = shop.client.post(f"/v1/staff/status/incidents/{incident['id']}/updates", headers=agent,
                         json={"status": "fixing", "text": {"en": "The switch is being replaced."}})
    assert r.status_code == 201 and [u["status"] for u in r.json()["updates"]] == ["investigating", "fixing"]
    r = shop.client.post(f"/v1/staff/status/incidents/{incident['id']}/resolve", headers=_staff(shop, "administrator"),
                         json={"text": {"en": "Fixed."}})
    assert r.status_code == 200
    r = shop.client.post(f"/v1/staff/status/incidents/{incident['id']}/updates", headers=agent,
                         json={"status": "fixing", "text": {"en": "Again?"}})
    assert r.status_code == 409 and r.json()["code"] == "invalid_state"
    audit = AuditEvent.__table__
    with rt.engine.connect() as conn:
        rows = conn.execute(select(audit.c.action, audit.c.actor, audit.c.role).where(
            audit.c.entity == "status_incident", audit.c.entity_id == incident["id"]).order_by(audit.c.id)).all()
    assert [(a, role) for a, _, role in rows] == [("status.opened", "support_agent"), ("status.updated", "support_agent"),
                                                  ("status.resolved", "administrator")]


def test_a_retried_publication_or_update_changes_nothing(shop):
    agent = _staff(shop)
    first = _open(shop, agent, **{"Idempotency-Key": "gra-1"})
    again = shop.client.post("/v1/staff/status/incidents", json=OUTAGE, headers={**agent, "Idempotency-Key": "gra-1"})
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    url = f"/v1/staff/status/incidents/{first['id']}/updates"
    body = {"status": "identified", "text": {"en": "A switch."}}
    codes = [shop.client.post(url, json=body, headers={**agent, "Idempotency-Key": "u-1"}).status_code for _ in range(2)]
    assert codes == [201, 200]
    assert shop.count(Incident) == 1 and shop.count(IncidentUpdate) == 2


def test_bad_input_is_refused_and_creates_nothing(shop):
    agent = _staff(shop)
    cases = [({**OUTAGE, "universe": "mars"}, "unknown_universe"),
             ({**OUTAGE, "products": ["web-hosting-starter"]}, "unknown_product"),  # another universe's
             ({**OUTAGE, "storefronts": ["XX"]}, "unknown_storefront"),
             ({**OUTAGE, "title": {"fr": "Sans anglais"}}, "invalid_texts"),
             ({**OUTAGE, "text": {"en": "   "}}, "invalid_texts"),
             ({**OUTAGE, "title": {"en": "x", "not a language!": "y"}}, "unknown_language")]
    for body, code in cases:
        r = shop.client.post("/v1/staff/status/incidents", json=body, headers=agent)
        assert (r.status_code, r.json()["code"]) == (422, code), body
        assert r.headers["content-type"].startswith("application/problem+json")
    assert shop.client.post("/v1/staff/status/incidents", json={**OUTAGE, "kind": "rumour"}, headers=agent).status_code == 400
    assert shop.client.get("/v1/status/999999").status_code == 404
    assert shop.count(Incident) == 0


def test_a_subscriber_gets_one_mail_per_update_in_its_language(shop, inbox):
    hans = shop.signup("DE", name="Hans GmbH", email="hans@example.de")
    claire = shop.signup(name="Claire SAS", email="claire@example.fr")
    webby = shop.signup(name="Web Only SARL", email="web@example.fr")
    for customer, universe in ((hans, "publiccloud"), (hans, "all"), (claire, "all"), (webby, "web")):
        r = shop.client.put(f"/v1/me/status-subscriptions/{universe}", headers=customer["headers"])
        assert r.status_code == 200, r.text
    assert shop.client.put("/v1/me/status-subscriptions/all", headers=claire["headers"]).status_code == 200  # once
    assert [s["universe"] for s in shop.client.get("/v1/me/status-subscriptions", headers=hans["headers"]).json()] == [
        "all", "publiccloud"]
    agent = _staff(shop)
    incident = _open(shop, agent)
    shop.client.post(f"/v1/staff/status/incidents/{incident['id']}/updates", headers=agent,
                     json={"status": "fixing", "text": {"en": "Replacing it.", "de": "Wir tauschen ihn aus."}})
    shop.client.post(f"/v1/staff/status/incidents/{incident['id']}/resolve", headers=agent, json={"text": {"en": "Fixed."}})
    run_queues(shop.rt)
    run_queues(shop.rt)
    mails = [m for m in inbox.messages if m["X-Univers-Notification"] == "status_update"]
    assert sorted(m["To"] for m in mails) == ["claire@example.fr"] * 3 + ["hans@example.de"] * 3
    german = [m for m in mails if m["To"] == "hans@example.de"]
    assert [m["Subject"] for m in german] == ["Störungsübersicht: Instances unreachable in GRA (Wird untersucht)",
                                              "Störungsübersicht: Instances unreachable in GRA (In Behebung)",
                                              "Störungsübersicht: Instances unreachable in GRA (Behoben)"]
    text = german[1].get_content()
    assert text.startswith("Guten Tag Hans GmbH,") and "> Wir tauschen ihn aus." in text
    french = [m for m in mails if m["To"] == "claire@example.fr"]
    assert french[0]["Subject"] == "Tableau des incidents : Instances injoignables à GRA (Analyse en cours)"
    assert shop.count(Notification) == 6
    assert shop.client.delete("/v1/me/status-subscriptions/all", headers=claire["headers"]).status_code == 204
    assert shop.client.delete("/v1/me/status-subscriptions/all", headers=claire["headers"]).status_code == 404


def test_staff_do_not_subscribe_and_an_unknown_universe_is_refused(shop):
    customer = shop.signup()
    r = shop.client.put("/v1/me/status-subscriptions/mars", headers=customer["headers"])
    assert r.status_code == 422 and r.json()["code"] == "unknown_universe"
    r = shop.client.put("/v1/me/status-subscriptions/web", headers=_staff(shop))
    assert r.status_code == 403 and r.json()["code"] == "not_a_customer"


def test_the_public_routes_say_in_the_openapi_document_that_they_need_no_key(shop):
    paths = shop.client.get("/schema/openapi.json").json()["paths"]
    for path in ("/v1/status", "/v1/status/{incident_id}", "/v1/status/feed.atom"):
        assert paths[path]["get"]["security"] == [], path
        assert shop.client.get(path.replace("{incident_id}", "1")).status_code in (200, 404)  # never 401
    assert paths["/v1/staff/status/incidents"]["post"].get("security", [{"apiKey": []}]) == [{"apiKey": []}]


def test_the_managers_service_page_links_to_the_open_incident(shop):
    customer, project, hosting = _customer_with_both(shop)
    incident = _open(shop, _staff(shop))
    c = shop.client
    c.cookies.clear()
    form = c.get("/manager/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    key = customer["headers"]["Authorization"][7:]
    assert c.post("/manager/sign-in", data={"csrf": csrf, "key": key, "next": ""}, follow_redirects=False).status_code == 303
    page = c.get(f"/manager/services/{project}").text
    assert f'href="/v1/status/{incident["id"]}"' in page and "Instances injoignables à GRA (Analyse en cours)" in page
    assert 'id="incidents"' not in c.get(f"/manager/services/{hosting}").text


def test_the_board_a_customer_follows_is_part_of_its_export(shop, other_db):
    from core.portability import account_import, export

    customer = shop.signup(name="Follower SARL")
    for universe in ("publiccloud", "baremetal"):
        assert shop.client.put(f"/v1/me/status-subscriptions/{universe}", headers=customer["headers"]).status_code in (200, 201)
    document = shop.client.get("/v1/me/export", headers=customer["headers"]).json()
    assert [s["universe"] for s in document["status_subscriptions"]] == ["baremetal", "publiccloud"]
    with unit_of_work(other_db) as conn:
        result = account_import.import_account(conn, other_db, document)
        again = export.export_account(conn, other_db, result.account_id)
    assert export.canonical(again)["status_subscriptions"] == export.canonical(document)["status_subscriptions"]
    assert result.counts["status_subscriptions"] == 2
    old = {k: v for k, v in document.items() if k != "status_subscriptions"}  # a document made before the board still reads
    assert export.canonical(old)["status_subscriptions"] == []
