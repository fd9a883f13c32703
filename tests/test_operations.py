"""What an operator sees and relies on, on both engines: each request's id (in its answer, its
problem+json, its audit events and its JSON log lines), the health probes, and the security
headers of the API and of its documentation page, whose scripts all come from this server."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from alembic import command
from litestar.testing import TestClient
from sqlalchemy import create_engine, select

from core.api.app import create_app
from core.db import alembic_config
from core.logs import JsonFormatter, TextFormatter, configure
from core.models import AuditEvent

events = AuditEvent.__table__
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_lines():
    """Every log record written meanwhile, as the JSON lines ``UNIVERS_LOG_FORMAT=json`` writes."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def _audit(rt, action: str) -> list[dict]:
    with rt.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(events).where(events.c.action == action).order_by(events.c.id)).mappings()]


# --- the request id ------------------------------------------------------------------------------


def test_a_request_keeps_a_sane_incoming_id_and_answers_with_it(shop):
    r = shop.client.get("/v1/storefronts", headers={"X-Request-Id": "lb-7f3a:42.x_y"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "lb-7f3a:42.x_y"


@pytest.mark.parametrize("incoming", ["", "has spaces", "a" * 65, "-starts-with-a-dash", "ünïcode".encode(), b"x\ty", b"a;b"])
def test_an_id_that_is_not_a_sane_token_is_replaced_by_a_new_one(shop, incoming):
    r = shop.client.get("/v1/storefronts", headers={"X-Request-Id": incoming})
    assert HEX32.fullmatch(r.headers["x-request-id"])


def test_each_request_without_an_id_gets_its_own(shop):
    ids = {shop.client.get("/health/live").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3 and all(HEX32.fullmatch(i) for i in ids)


def test_every_problem_names_its_request(shop):
    customer = shop.signup()
    for method, path, headers, status in [
        ("GET", "/v1/me", {}, 401),  # no key
        ("GET", "/no/such/address", {}, 404),  # no route at all: outside Litestar's routing
        ("GET", "/v1/services/999999", customer["headers"], 404),  # a domain error
        ("GET", "/v1/services?after=-1", customer["headers"], 400),  # a malformed parameter
        ("DELETE", "/v1/storefronts", {}, 405),
    ]:
        r = shop.client.request(method, path, headers={**headers, "X-Request-Id": f"probe-{status}"})
        assert r.status_code == status, (path, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["request_id"] == r.headers["x-request-id"] == f"probe-{status}"


def test_the_audit_events_of_a_request_carry_its_id_and_a_jobs_none(shop, rt):
    r = shop.client.post("/v1/customers", headers={"X-Request-Id": "signup-1"},
                         json={"subsidiary": "FR", "kind": "company", "name": "Acme SAS", "email": "ops@acme.example"})
    assert r.status_code == 201
    key = {"Authorization": f"Bearer {r.json()['api_key']}", "X-Request-Id": "pay-2"}
    assert shop.client.put("/v1/me/payment-method", json={"method": "test", "outcome": "success"}, headers=key).status_code == 200
    (created,) = _audit(rt, "account.created")
    assert created["request_id"] == "signup-1"  # written by the domain with an actor it built itself
    (changed,) = _audit(rt, "account.payment_method_changed")
    assert changed["request_id"] == "pay-2"  # written with the actor of the key (core.api.common)
    from core.audit import Actor, record
    from core.uow import unit_of_work

    staff = shop.staff()
    found = shop.client.get("/v1/staff/events", params={"request_id": "signup-1"}, headers=staff).json()
    assert [(e["action"], e["request_id"]) for e in found] == [("account.created", "signup-1")]  # what that request wrote
    with unit_of_work(rt) as conn:  # outside any request: a job
        record(conn, rt.clock.now(), Actor.system("test"), "account", created["entity_id"], "test.job")
    assert _audit(rt, "test.job")[0]["request_id"] is None


def test_a_renewal_run_staff_start_carries_their_request_id_in_its_set_based_events(shop, rt):
    import datetime as dt

    acme = shop.signup(top_up="100.00")
    service_id = shop.order(acme, "web-hosting-starter-p1m")["services"][0]["id"]
    shop.deliver()
    due = dt.date.fromisoformat(shop.service(acme, service_id)["expires_on"])
    shop.clock.set(due)
    r = shop.client.post("/v1/staff/renewal-runs", json={}, headers={**shop.staff(), "X-Request-Id": "run-7"})
    assert r.status_code == 200 and r.json()["services"] == 1, r.text
    (renewed,) = _audit(rt, "service.renewal_invoiced")
    assert renewed["request_id"] == "run-7"  # written by INSERT … SELECT, in the run's worker thread


# --- the logs ------------------------------------------------------------------------------------


def test_each_answer_is_one_json_access_line_with_its_id_route_status_duration_and_actor(shop, json_lines):
    customer = shop.signup()
    r = shop.client.get("/v1/services/424242", headers={**customer["headers"], "X-Request-Id": "trace-1"})
    assert r.status_code == 404
    (line,) = [entry for entry in json_lines() if entry["logger"] == "univers.access" and entry.get("request_id") == "trace-1"]
    assert line["route"] == "/v1/services/{service_id}"  # the template: never the path sent
    assert (line["method"], line["status"], line["level"]) == ("GET", 404, "info")
    assert line["actor"] == f"account:{customer['handle']}" and line["role"] is None
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert customer["headers"]["Authorization"][7:] not in json.dumps(json_lines())  # no key in any line
    assert "424242" not in json.dumps(line)


def test_staff_are_logged_with_their_role_and_health_probes_at_debug(shop, json_lines):
    staff = shop.staff()
    shop.client.get("/v1/staff/invoices/overdue", headers={**staff, "X-Request-Id": "staff-1"})
    shop.client.get("/health/live", headers={"X-Request-Id": "probe-1"})
    lines = {e["request_id"]: e for e in json_lines() if e["logger"] == "univers.access"}
    assert lines["staff-1"]["actor"].startswith("staff:") and lines["staff-1"]["role"] == "administrator"
    assert lines["probe-1"]["level"] == "debug"


def test_a_line_logged_while_serving_a_request_names_it(shop, json_lines, monkeypatch):
    from core.api import problems

    def crash(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("core.api.catalog.storefront_read", crash)
    r = shop.client.get("/v1/storefronts", headers={"X-Request-Id": "crash-1"})
    assert r.status_code == 500 and r.json()["request_id"] == "crash-1"
    (error,) = [e for e in json_lines() if e["logger"] == problems.log.name and e["level"] == "error"]
    assert error["request_id"] == "crash-1" and "RuntimeError: boom" in error["exception"]


def test_a_text_line_written_while_serving_names_the_request(shop):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(TextFormatter())
    access = logging.getLogger("univers.access")
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        shop.client.get("/v1/storefronts", headers={"X-Request-Id": "text-1"})
    finally:
        access.removeHandler(handler)
        access.setLevel(logging.NOTSET)
    assert re.search(r"INFO univers.access: GET /v1/storefronts 200 [0-9.]+ ms - \[req text-1\]$", out.getvalue().strip())


def test_the_application_leaves_the_process_logging_as_configured(rt):
    """Litestar would put its own handler on the root logger at start-up: JSON lines would be lost."""
    root = logging.getLogger()
    before = list(root.handlers)
    with TestClient(app=create_app(rt)) as c:
        assert c.get("/health/live").status_code == 200
    assert root.handlers == before


def test_the_log_format_is_text_or_json_and_nothing_else():
    configure("json")  # a test runner's handlers are there: they are left alone
    configure("text")
    with pytest.raises(ValueError, match="log format"):
        configure("xml")


def test_the_log_format_comes_from_the_environment():
    from core.config import Settings

    assert Settings.from_env({}).log_format == "text"
    assert Settings.from_env({"UNIVERS_LOG_FORMAT": "JSON"}).log_format == "json"


# --- health --------------------------------------------------------------------------------------


def test_live_answers_without_a_key(shop):
    r = shop.client.get("/health/live")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


def test_ready_on_a_migrated_database_with_its_catalog(shop):
    r = shop.client.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and {k: v["ok"] for k, v in body["checks"].items()} == \
        {"database": True, "migrations": True, "catalog": True}


def test_ready_is_503_while_the_database_is_behind_the_migrations(shop, rt):
    with rt.engine.begin() as conn:
        command.downgrade(alembic_config(conn), "-1")
    r = shop.client.get("/health/ready", headers={"Accept-Language": "fr-FR"})
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert (body["code"], body["failed"]) == ("not_ready", ["migrations"])
    assert body["checks"]["database"]["ok"] and not body["checks"]["migrations"]["ok"]
    assert body["request_id"] == r.headers["x-request-id"] and "migrations" in body["detail"]
    assert shop.client.get("/health/live").status_code == 200  # alive all the same: no restart needed
    with rt.engine.begin() as conn:
        command.upgrade(alembic_config(conn), "head")
    assert shop.client.get("/health/ready").status_code == 200


def test_ready_is_503_on_a_database_never_migrated(shop, rt, tmp_path):
    good = rt.engine
    rt.engine = create_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        r = shop.client.get("/health/ready")
    finally:
        rt.engine.dispose()
        rt.engine = good
    assert r.status_code == 503 and r.json()["failed"] == ["migrations"]
    assert r.json()["checks"]["migrations"]["detail"].startswith("at no revision, head ")


def test_ready_is_503_when_the_database_does_not_answer(shop, rt):
    good = rt.engine
    rt.engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:9/nothing", connect_args={"connect_timeout": 2})
    try:
        r = shop.client.get("/health/ready")
    finally:
        rt.engine.dispose()
        rt.engine = good
    assert r.status_code == 503 and r.json()["failed"] == ["database", "migrations"]


def test_the_probes_are_not_counted_in_the_metrics(shop):
    for _ in range(3):
        shop.client.get("/health/ready")
    scraped = shop.client.get("/metrics", headers=shop.staff()).text
    assert "/health/ready" not in scraped and "/health/live" not in scraped


# --- security headers ----------------------------------------------------------------------------


def test_every_answer_says_nosniff_and_no_referrer_and_no_hsts_over_plain_http(shop):
    for path in ("/v1/storefronts", "/v1/me", "/no/such/address", "/schema/openapi.json"):
        r = shop.client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer", path
        assert "strict-transport-security" not in r.headers
    assert "content-security-policy" not in shop.client.get("/v1/storefronts").headers  # JSON is no page


def test_hsts_over_tls_only_or_behind_a_trusted_proxy(rt):
    with TestClient(app=create_app(rt), base_url="https://univers.example") as tls:
        assert tls.get("/v1/storefronts").headers["strict-transport-security"].startswith("max-age=")
    with TestClient(app=create_app(rt)) as plain:  # a client's X-Forwarded-Proto is not believed by default
        assert "strict-transport-security" not in plain.get("/v1/storefronts", headers={"X-Forwarded-Proto": "https"}).headers
    rt.settings = rt.settings.with_(trust_forwarded_proto=True)
    with TestClient(app=create_app(rt)) as proxied:
        assert "strict-transport-security" in proxied.get("/v1/storefronts", headers={"X-Forwarded-Proto": "https"}).headers
        assert "strict-transport-security" not in proxied.get("/v1/storefronts", headers={"X-Forwarded-Proto": "http"}).headers


def test_the_console_keeps_its_own_policy(shop):
    r = shop.client.get("/manager/sign-in")
    assert r.headers["content-security-policy"] == "default-src 'self'; frame-ancestors 'none'"
    assert r.headers["referrer-policy"] == "same-origin"
    assert len(r.headers.get_list("referrer-policy")) == 1 and len(r.headers.get_list("content-security-policy")) == 1


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
def test_the_docs_page_loads_every_script_and_style_from_this_server(shop, page):
    r = shop.client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and r.headers["x-frame-options"] == "DENY"
    html = r.text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert len(scripts) == 3 and all(body.strip() == "" for _, body in scripts)  # no inline script
    urls = [re.search(r'src="([^"]+)"', attrs).group(1) for attrs, _ in scripts]
    urls += re.findall(r'<link\b[^>]*href=["\']([^"\']+)["\']', html)
    assert urls and all(u.startswith("/schema/assets/") for u in urls), urls  # none from another site, nor without integrity
    for url in urls:
        asset = shop.client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert "SwaggerUIBundle" in shop.client.get("/schema/assets/swagger-ui-bundle.js").text
    assert "/schema/openapi.json" in html and shop.client.get("/schema/openapi.json").status_code == 200
