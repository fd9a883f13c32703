"""Access: every cell of the permission table, through the API, for every kind of caller.

The expected answer of each (endpoint, caller) cell is derived from ``core.access.PERMISSIONS``,
not written by hand: allowed → the endpoint's success code; a role that does not allow it →
403; no role on the object → 404 (as if it did not exist); no valid key → 401. A change to the
table therefore changes what is tested, and a route that forgets its check fails here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import update

from core.access import PERMISSIONS, STAFF_ROLES, allowed, markdown_table
from core.audit import Actor
from core.customers.accounts import create_customer, hash_key, issue_key
from core.models import ApiKey, Service
from core.support import abuse
from core.uow import unit_of_work

svc = Service.__table__
PLAN = "bm-ks-1-p1m"  # a dedicated server: it has technical actions (reboot, reinstall)
CUSTOMERS = ("owner", "admin", "tech", "billing", "partner", "unrelated")
BAD_KEYS = ("no_key", "expired_key", "revoked_key")
CALLERS = CUSTOMERS + STAFF_ROLES + BAD_KEYS


@dataclass
class Endpoint:
    name: str
    method: str
    path: str  # {service} and {invoice} are filled in
    action: str
    ok: int = 200  # the answer when allowed (a conflict when the service's state makes it moot)
    body: dict | None = None
    mutates: bool = False
    kind: str = "service"  # what the action is on: service | invoice | order (the buyer's) | account (the caller's own)
    staff_answer: int | None = None  # account routes that are a customer's only


ENDPOINTS = [
    Endpoint("get service", "GET", "/v1/services/{service}", "service.read"),
    Endpoint("service log", "GET", "/v1/services/{service}/events", "service.events"),
    Endpoint("manual renewal", "PUT", "/v1/services/{service}/renewal-mode", "service.renewal_mode", body={"mode": "manual"},
             mutates=True),
    Endpoint("stop", "POST", "/v1/services/{service}/stop", "service.stop", mutates=True),
    Endpoint("terminate", "POST", "/v1/services/{service}/terminate", "service.terminate", mutates=True),
    Endpoint("infrastructure logs", "GET", "/v1/services/{service}/logs", "service.logs"),
    Endpoint("send infrastructure logs", "POST", "/v1/services/{service}/logs", "service.logs.send",
             body={"entries": [{"id": "e1", "at": "2026-01-05T08:00:00Z", "severity": "info", "source": "hardware",
                                "message": "Fan 2 nominal"}]}),
    Endpoint("technical actions", "GET", "/v1/services/{service}/actions", "service.technical"),
    Endpoint("reboot", "POST", "/v1/services/{service}/actions/reboot", "service.technical", ok=202, mutates=True),
    Endpoint("abuse suspension", "POST", "/v1/services/{service}/abuse-suspension", "service.abuse", body={"reason": "Spam"},
             mutates=True),
    Endpoint("lift abuse", "DELETE", "/v1/services/{service}/abuse-suspension", "service.abuse", ok=409),  # none to lift
    Endpoint("contact change", "POST", "/v1/services/{service}/contact-changes", "service.contacts", ok=201,
             body={"role": "tech", "to": "{unrelated}"}, mutates=True),
    Endpoint("restore", "POST", "/v1/staff/services/{service}/restore", "service.restore", ok=409),  # not terminated
    Endpoint("contacts", "GET", "/v1/services/{service}/contacts", "service.read"),
    # pay-as-you-go: the service is a server, not a project, so the allowed callers are told so (422)
    Endpoint("usage", "GET", "/v1/services/{service}/usage", "service.read"),
    Endpoint("consumption", "GET", "/v1/services/{service}/consumption", "service.invoices", ok=422),
    Endpoint("savings plans", "GET", "/v1/services/{service}/commitments", "service.invoices"),
    Endpoint("commit", "POST", "/v1/services/{service}/commitments", "service.commit", ok=422, body={"monthly": "50.00"}),
    Endpoint("spending alert", "GET", "/v1/services/{service}/spending-alert", "service.invoices", ok=422),
    Endpoint("set spending alert", "PUT", "/v1/services/{service}/spending-alert", "service.invoices", ok=422,
             body={"threshold": "5.00"}),
    # support: a ticket about invoices, opened by the service's admin contact, so that its billing contact sees it too
    Endpoint("open ticket", "POST", "/v1/support/tickets", "ticket.open", ok=201,
             body={"service_id": "{service}", "subject": "Invoice", "message": "Which rate?", "category": "billing"}),
    Endpoint("ticket", "GET", "/v1/support/tickets/{ticket}", "ticket.read"),
    Endpoint("ticket reply", "POST", "/v1/support/tickets/{ticket}/messages", "ticket.reply", ok=201,
             body={"message": "Any news?"}),
    Endpoint("ticket answer", "POST", "/v1/staff/support/tickets/{ticket}/answers", "ticket.answer",
             body={"message": "Looking into it."}),
    Endpoint("abuse decision", "POST", "/v1/staff/support/abuse-cases/{case}/decision", "abuse.decide",
             body={"decision": "upheld", "message": "The phishing page is still served."}, mutates=True),
    Endpoint("invoice", "GET", "/v1/invoices/{invoice}", "service.invoices", kind="invoice"),
    Endpoint("invoice PDF", "GET", "/v1/invoices/{invoice}/pdf", "service.invoices", kind="invoice"),
    Endpoint("pay invoice", "POST", "/v1/invoices/{invoice}/payments", "service.invoices", ok=409, body={"method": "balance"},
             kind="invoice"),  # paid already
    Endpoint("order", "GET", "/v1/orders/{order}", "staff.customers", kind="order"),
    Endpoint("me", "GET", "/v1/me", "account", kind="account"),
    Endpoint("my keys", "GET", "/v1/me/api-keys", "account", kind="account"),
    Endpoint("my log", "GET", "/v1/me/events", "account", kind="account"),
    Endpoint("my export", "GET", "/v1/me/export", "account", kind="account", staff_answer=404),  # staff have no customer data
    Endpoint("staff export", "GET", "/v1/staff/customers/{fresh}/export", "staff.customers"),
    Endpoint("staff close", "POST", "/v1/staff/customers/{fresh}/close", "staff.accounts", mutates=True),
    Endpoint("staff log", "GET", "/v1/staff/events", "staff.customers"),
    Endpoint("support report", "GET", "/v1/staff/support/report?opened_from=2026-01-01&opened_to=2026-12-31",
             "staff.support"),
    Endpoint("revenue", "GET", "/v1/staff/reports/revenue?issued_from=2026-01-01&issued_to=2026-12-31", "staff.reports"),
    Endpoint("renewal run", "POST", "/v1/staff/renewal-runs", "staff.billing", body={}, mutates=True),
    Endpoint("catalog check", "GET", "/v1/staff/catalog/problems", "staff.catalog"),
    Endpoint("publish incident", "POST", "/v1/staff/status/incidents", "staff.status", ok=201,
             body={"universe": "baremetal", "kind": "known_bug", "title": {"en": "Slow KVM"}, "text": {"en": "Looking."}}),
    Endpoint("metrics", "GET", "/metrics", "staff.metrics"),
    Endpoint("new staff", "POST", "/v1/staff/accounts", "staff.accounts", ok=201,
             body={"name": "New Agent", "email": "agent@univers.example", "role": "support_agent"}, mutates=True),
]


def expected(endpoint: Endpoint, caller: str) -> int:
    if caller in BAD_KEYS:
        return 401
    if endpoint.kind == "account":  # every account on itself
        return endpoint.staff_answer if caller in STAFF_ROLES and endpoint.staff_answer else endpoint.ok
    if caller in STAFF_ROLES:
        return endpoint.ok if allowed({caller}, endpoint.action) else 403
    if endpoint.kind == "order":  # the buyer's: the owner's order, and the billing account's for the split service
        return endpoint.ok if caller in ("owner", "billing") else 404
    if endpoint.action.startswith("staff."):
        return 403  # reserved for staff
    roles = {"owner": {"admin", "tech", "billing"}}.get(caller, {caller} & {"admin", "tech", "billing"})
    if not roles:
        return 404
    if allowed(roles, endpoint.action):
        return endpoint.ok
    return 404 if endpoint.kind == "invoice" else 403  # an invoice is its addressee's: others have no role on it


class World:
    """A service whose three contacts are three accounts, one held by one account, a partner
    and an unrelated account, the four staff roles, and keys that no longer work."""

    def __init__(self, shop):
        self.shop, self.rt, self.client = shop, shop.rt, shop.client
        self.headers: dict[str, dict] = {}
        for name in CUSTOMERS:
            self.headers[name] = shop.signup(name=f"{name.title()} SAS", top_up="500.00")["headers"]
        me = {name: self.client.get("/v1/me", headers=h).json() for name, h in self.headers.items()}
        self.ids = {name: m["id"] for name, m in me.items()}
        self.handles = {name: m["handle"] for name, m in me.items()}
        r = self.client.post("/v1/me/partner-programmes", json={"universe": "baremetal"}, headers=self.headers["partner"])
        assert r.status_code == 201, r.text
        with unit_of_work(self.rt) as conn:
            for role in STAFF_ROLES:
                _, key = create_customer(conn, self.rt, {"subsidiary": "FR", "name": role, "email": f"{role}@univers.example"},
                                         is_staff=True, staff_role=role)
                self.headers[role] = {"Authorization": f"Bearer {key}"}
            staff_id = conn.execute(ApiKey.__table__.select().order_by(ApiKey.__table__.c.id.desc())).first().account_id
            expired = issue_key(conn, self.rt, staff_id, expires_at=self.rt.clock.now() - dt.timedelta(seconds=1))
            revoked = issue_key(conn, self.rt, staff_id)
            conn.execute(update(ApiKey.__table__).where(ApiKey.__table__.c.key_hash == hash_key(revoked))
                         .values(revoked_at=self.rt.clock.now()))
        self.headers["no_key"] = {}
        self.headers["expired_key"] = {"Authorization": f"Bearer {expired}"}
        self.headers["revoked_key"] = {"Authorization": f"Bearer {revoked}"}

    def service(self, split: bool) -> tuple[int, int, int]:
        """A delivered server and its order's invoice: ordered by the billing account (which the
        invoice is addressed to) and handed to the admin and tech accounts, or held by "owner"."""
        buyer = "billing" if split else "owner"
        order = self.shop.order({"headers": self.headers[buyer]}, PLAN)
        self.shop.deliver()
        service_id, invoice_id, order_id = order["services"][0]["id"], order["invoice"]["id"], order["id"]
        if split:
            with unit_of_work(self.rt) as conn:
                conn.execute(update(svc).where(svc.c.id == service_id).values(
                    account_id=self.ids["admin"], admin_account_id=self.ids["admin"], tech_account_id=self.ids["tech"]))
        return service_id, invoice_id, order_id

    def abuse_case(self, service_id: int) -> int:
        """The abuse case of a suspension for abuse of the service (by a system job)."""
        with unit_of_work(self.rt) as conn:
            return abuse.suspend(conn, self.rt, Actor.system("test"), service_id, "Phishing page")[1]["id"]

    def ticket(self, service_id: int, split: bool) -> int:
        """A ticket about invoices on the service, opened by its admin contact."""
        r = self.client.post("/v1/support/tickets", headers=self.headers["admin" if split else "owner"], json={
            "service_id": service_id, "subject": "Invoice", "message": "Which rate?", "category": "billing"})
        assert r.status_code == 201, r.text
        return r.json()["id"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_every_cell_of_the_permission_table(shop, endpoint):
    world = World(shop)
    shared = {split: world.service(split) for split in (False, True)}
    wrong = []
    for caller in CALLERS:
        split = caller != "owner"
        service_id, invoice_id, order_id = world.service(split) if endpoint.mutates else shared[split]
        fresh = shop.signup(name="Fresh SAS")["id"] if "{fresh}" in endpoint.path else None
        ticket = world.ticket(service_id, split) if "{ticket}" in endpoint.path else None
        case = world.abuse_case(service_id) if "{case}" in endpoint.path else None
        path = endpoint.path.format(service=service_id, invoice=invoice_id, order=order_id, fresh=fresh, ticket=ticket,
                                    case=case)
        body = {k: service_id if v == "{service}" else v.format(**world.handles) if isinstance(v, str) else v
                for k, v in endpoint.body.items()} if endpoint.body is not None else None
        r = world.client.request(endpoint.method, path, json=body, headers=world.headers[caller])
        want = expected(endpoint, caller)
        if r.status_code != want:
            wrong.append(f"{caller}: {r.status_code} (expected {want}) {r.text[:160]}")
        if r.status_code >= 400:
            assert r.headers["content-type"].startswith("application/problem+json"), (caller, r.text)
    assert not wrong, f"{endpoint.method} {endpoint.path}:\n" + "\n".join(wrong)


def test_the_table_covers_every_action():
    """Each action of the permission table is tried through at least one endpoint above."""
    assert {e.action for e in ENDPOINTS} - {"account"} == set(PERMISSIONS)


def test_the_readme_shows_the_table_of_the_code():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert markdown_table() in readme


def test_lists_only_show_what_the_caller_may_see(shop):
    world = World(shop)
    split_id, _, _ = world.service(True)
    own_id, _, _ = world.service(False)
    for caller, visible in {"admin": {split_id}, "tech": {split_id}, "billing": {split_id}, "owner": {own_id},
                            "partner": set(), "unrelated": set()}.items():
        r = world.client.get("/v1/services", headers=world.headers[caller])
        assert {s["id"] for s in r.json()["items"]} == visible, caller
    # invoices go to the billing contact: the admin and tech contacts see none
    for caller, count in {"billing": 1, "owner": 1, "admin": 0, "tech": 0}.items():
        r = world.client.get("/v1/invoices", headers=world.headers[caller])
        assert len(r.json()["items"]) == count, caller


def test_ids_of_other_accounts_answer_404_everywhere(shop):
    """IDOR: walking ids of another account's objects finds nothing, whatever the route."""
    world = World(shop)
    service_id, invoice_id, _ = world.service(False)
    stranger = world.headers["unrelated"]
    order_id = world.client.get(f"/v1/services/{service_id}", headers=world.headers["owner"]).json()["order_id"]
    for method, path in [("GET", f"/v1/services/{service_id}"), ("GET", f"/v1/services/{service_id}/events"),
                         ("POST", f"/v1/services/{service_id}/stop"), ("DELETE", f"/v1/services/{service_id}/stop"),
                         ("POST", f"/v1/services/{service_id}/terminate"), ("GET", f"/v1/services/{service_id}/actions"),
                         ("POST", f"/v1/services/{service_id}/actions/reboot"), ("GET", f"/v1/orders/{order_id}"),
                         ("GET", f"/v1/invoices/{invoice_id}"), ("GET", f"/v1/invoices/{invoice_id}/pdf"),
                         ("POST", f"/v1/invoices/{invoice_id}/payments"), ("GET", f"/v1/services/{service_id + 1000}")]:
        r = world.client.request(method, path, headers=stranger, json={} if method == "POST" else None)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert world.client.get(f"/v1/services/{service_id}", headers=world.headers["owner"]).json()["state"] == "active"


def test_the_partner_lists_its_clients_services(shop):
    world = World(shop)
    client_a = shop.signup(name="Client A", top_up="500.00")
    client_b = shop.signup(name="Client B", top_up="500.00")
    ids = []
    for client in (client_a, client_a, client_b):
        order = shop.order(client, PLAN)
        ids.append(order["services"][0]["id"])
    shop.deliver()
    with unit_of_work(world.rt) as conn:  # the partner runs them as tech contact (admin for the last one)
        conn.execute(update(svc).where(svc.c.id.in_(ids[:2])).values(tech_account_id=world.ids["partner"]))
        conn.execute(update(svc).where(svc.c.id == ids[2]).values(admin_account_id=world.ids["partner"], account_id=world.ids["partner"]))
    headers = world.headers["partner"]
    r = world.client.get("/v1/partner/services", headers=headers)
    assert [s["id"] for s in r.json()["items"]] == ids
    r = world.client.get(f"/v1/partner/services?client={client_a['handle']}", headers=headers)
    assert [s["id"] for s in r.json()["items"]] == ids[:2]
    r = world.client.get(f"/v1/partner/services?client={client_b['id']}", headers=headers)
    assert [s["id"] for s in r.json()["items"]] == ids[2:]
    # the invoices still go to the clients
    assert world.client.get("/v1/invoices", headers=headers).json()["items"] == []
    # a partner in another universe only, or a non-partner, gets a clear refusal
    r = world.client.get("/v1/partner/services?universe=web", headers=headers)
    assert r.status_code == 403 and r.json()["code"] == "not_a_partner"
    r = world.client.get("/v1/partner/services", headers=world.headers["unrelated"])
    assert r.status_code == 403 and r.json()["code"] == "not_a_partner"
    r = world.client.get("/v1/partner/services?client=nobody-univers", headers=headers)
    assert r.status_code == 404


def test_abuse_suspension_is_separate_from_non_payment(shop, clock):
    from core.sim import resources

    world = World(shop)
    service_id, _, _ = world.service(False)
    desk, owner = world.headers["abuse_desk"], world.headers["owner"]
    r = world.client.post(f"/v1/services/{service_id}/abuse-suspension", json={"reason": "Phishing site reported"}, headers=desk)
    assert r.status_code == 200, r.text
    seen = world.client.get(f"/v1/services/{service_id}", headers=owner).json()
    assert seen["abuse"]["reason"] == "Phishing site reported" and seen["state"] == "active"
    shop.deliver()
    assert [a for (_k, _u, _s, a, _n) in resources(world.rt.settings, service_id)][-1] == "suspend"
    # technical actions stop while it is held
    r = world.client.post(f"/v1/services/{service_id}/actions/reboot", headers=owner)
    assert r.status_code == 409
    # the service is then suspended for non-payment too; paying does not lift the abuse hold
    with unit_of_work(world.rt) as conn:
        conn.execute(update(svc).where(svc.c.id == service_id).values(state="suspended", suspended_on=clock.today()))
    from core.audit import Actor
    from core.lifecycle.state import transition

    with unit_of_work(world.rt) as conn:
        transition(conn, world.rt, [service_id], "active", "service.reactivated", Actor.system("test"), outbox_action="resume")
    assert shop.deliver().done == 0  # no resume reached the infrastructure: still held for abuse
    r = world.client.delete(f"/v1/services/{service_id}/abuse-suspension", headers=desk)
    assert r.status_code == 200 and r.json()["abuse"] is None
    shop.deliver()
    assert [a for (_k, _u, _s, a, _n) in resources(world.rt.settings, service_id)][-1] == "resume"
    # lifting the hold of a service suspended for non-payment leaves it suspended
    with unit_of_work(world.rt) as conn:
        conn.execute(update(svc).where(svc.c.id == service_id).values(state="suspended"))
    world.client.post(f"/v1/services/{service_id}/abuse-suspension", json={"reason": "Spam"}, headers=desk)
    world.client.delete(f"/v1/services/{service_id}/abuse-suspension", headers=desk)
    assert world.client.get(f"/v1/services/{service_id}", headers=owner).json()["state"] == "suspended"
    log = world.client.get(f"/v1/services/{service_id}/events", headers=owner).json()
    lifted = [e for e in log if e["action"] == "service.abuse_lifted"]
    assert lifted and all(e["role"] == "abuse_desk" for e in lifted)


def test_technical_actions_run_once_through_the_plugin(shop):
    from core.sim import resources

    world = World(shop)
    service_id, _, _ = world.service(True)
    tech = world.headers["tech"]
    assert world.client.get(f"/v1/services/{service_id}/actions", headers=tech).json() == ["reboot", "reinstall", "rescue"]
    r = world.client.post(f"/v1/services/{service_id}/actions/format-c", headers=tech)
    assert r.status_code == 422 and r.json()["code"] == "unknown_technical_action"
    assert world.client.post(f"/v1/services/{service_id}/actions/reinstall", headers=tech).status_code == 202
    shop.deliver()
    shop.deliver()
    done = [a for (_k, _u, _s, a, _n) in resources(world.rt.settings, service_id)]
    assert done.count("reinstall") == 1
    event = [e for e in world.client.get(f"/v1/services/{service_id}/events", headers=tech).json()
             if e["action"] == "service.technical_action"][0]
    assert event["role"] == "tech" and event["after"] == {"action": "reinstall"}


def test_api_keys_are_scoped_expire_and_can_be_revoked(shop, clock):
    world = World(shop)
    service_id, _, _ = world.service(False)
    owner = world.headers["owner"]
    r = world.client.post("/v1/me/api-keys", json={"name": "monitoring", "scopes": ["services:read"],
                                                   "expires_at": (clock.now() + dt.timedelta(days=1)).isoformat()}, headers=owner)
    assert r.status_code == 201, r.text
    created = r.json()
    reader = {"Authorization": f"Bearer {created['secret']}"}
    assert created["key"]["scopes"] == ["services:read"]
    assert world.client.get(f"/v1/services/{service_id}", headers=reader).status_code == 200
    r = world.client.post(f"/v1/services/{service_id}/stop", headers=reader)
    assert r.status_code == 403 and r.json()["code"] == "scope_missing"
    assert world.client.get("/v1/invoices", headers=reader).status_code == 403
    # the secret is never listed, nor kept
    listed = world.client.get("/v1/me/api-keys", headers=owner).json()
    assert all("secret" not in k for k in listed) and created["secret"] not in str(listed)
    with world.rt.engine.connect() as conn:
        assert created["secret"] not in str(conn.execute(ApiKey.__table__.select()).all())
    # expiry
    clock.advance(days=1, seconds=1)
    assert world.client.get(f"/v1/services/{service_id}", headers=reader).status_code == 401
    # revocation, at once; another account's key is "not found"
    r = world.client.post("/v1/me/api-keys", json={}, headers=owner)
    second = {"Authorization": f"Bearer {r.json()['secret']}"}
    key_id = r.json()["key"]["id"]
    assert world.client.delete(f"/v1/me/api-keys/{key_id}", headers=world.headers["unrelated"]).status_code == 404
    assert world.client.delete(f"/v1/me/api-keys/{key_id}", headers=owner).json()["revoked_at"]
    assert world.client.get("/v1/me", headers=second).status_code == 401
    r = world.client.post("/v1/me/api-keys", json={"scopes": ["root"]}, headers=owner)
    assert r.status_code == 422 and r.json()["code"] == "invalid_scope"
    r = world.client.post("/v1/me/api-keys", json={"expires_at": "2020-01-01T00:00:00Z"}, headers=owner)
    assert r.status_code == 422 and r.json()["code"] == "invalid_expiry"


def test_rate_limit_answers_429_with_retry_after(rt, clock):
    from litestar.testing import TestClient

    from core.api.app import create_app

    limited = replace(rt, settings=rt.settings.with_(rate_limit=5))
    with TestClient(app=create_app(limited)) as client:
        r = client.post("/v1/customers", json={"subsidiary": "FR", "name": "Busy SAS", "email": "busy@example.com"})
        headers = {"Authorization": f"Bearer {r.json()['api_key']}", "Accept-Language": "fr"}
        codes = [client.get("/v1/me", headers=headers).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        r = client.get("/v1/me", headers=headers)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["code"] == "too_many_requests" and r.headers["content-type"].startswith("application/problem+json")
        # another key has its own allowance
        r = client.post("/v1/customers", json={"subsidiary": "FR", "name": "Calm SAS", "email": "calm@example.com"})
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {r.json()['api_key']}"}).status_code == 200
