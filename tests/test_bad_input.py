"""Bad input of every kind answers a 4xx problem+json with a stable code and changes nothing:
bodies nested too deep, control characters in any text, amounts beyond what the columns hold,
VAT numbers python-stdnum chokes on, bodies that are not JSON or too large. Each class is
closed in one place (core/api/bodies.py, core/money.py), so the tests try it on several routes."""

from __future__ import annotations

import json

import pytest

from core.api.bodies import MAX_DEPTH, nesting_exceeds
from core.models import Account, BalanceEntry, Invoice, Order, Payment, Service, SupportTicket, UsageRecord
from core.money import MAX_MINOR, AmountOutOfRange, MoneyError, max_amount, to_micro, to_minor

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def acme(shop):
    return shop.signup("FR", top_up="100.00")


def written(shop) -> tuple:
    return tuple(shop.count(model) for model in (Account, Order, Service, Invoice, Payment, BalanceEntry, SupportTicket, UsageRecord))


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code and body["status"] == status, body
    return body


def signup_body(**fields) -> dict:
    return {"subsidiary": "FR", "kind": "company", "name": "Bad Input SAS", "email": "bad@input.example", **fields}


# --- depth ---------------------------------------------------------------------------------------


def test_a_body_nested_100000_levels_deep_is_refused_before_any_decoder(shop, acme):
    before = written(shop)
    deep = b"[" * 100_000 + b"]" * 100_000
    r = shop.client.post("/v1/customers", content=b'{"name": ' + deep + b"}", headers=JSON)
    assert str(MAX_DEPTH) in problem(r, 400, "nesting_too_deep")["detail"]
    options = b'{"a":' * 5000 + b'"x"' + b"}" * 5000
    order = b'{"items": [{"plan": "bm-rise-1-p1m", "options": ' + options + b"}]}"
    r = shop.client.post("/v1/orders", content=order, headers={**acme["headers"], **JSON, "Idempotency-Key": "deep"})
    problem(r, 400, "nesting_too_deep")
    r = shop.client.post("/v1/usage", content=b'{"records": ' + deep + b"}", headers={**acme["headers"], **JSON})
    problem(r, 400, "nesting_too_deep")  # a route that decodes its body itself is guarded too
    assert written(shop) == before


def test_the_depth_is_measured_on_the_structure_not_on_brackets_in_texts():
    def nested(depth: int) -> bytes:
        return b'{"a": ' * depth + b"1" + b"}" * depth

    assert not nesting_exceeds(nested(MAX_DEPTH)) and nesting_exceeds(nested(MAX_DEPTH + 1))
    assert not nesting_exceeds(json.dumps({"name": "[" * 1000 + "{" * 1000, "q": '\\"[[[['}).encode())
    assert not nesting_exceeds(json.dumps([[1]] * 10_000).encode())  # wide is not deep
    assert not nesting_exceeds(b"[}" * 40)  # malformed, not deep: the decoder refuses it (400 invalid_request)
    assert nesting_exceeds(b"[" * 5_000_000 + b"]" * 5_000_000)  # 10 MB, at C speed


def test_a_malformed_body_is_invalid_request(shop, acme):
    before = written(shop)
    r = shop.client.post("/v1/customers", content=b'{"name": "a\\ud800b"}', headers=JSON)  # a lone surrogate
    problem(r, 400, "invalid_request")
    r = shop.client.post("/v1/customers", content=b"[}" * 40, headers=JSON)
    problem(r, 400, "invalid_request")
    assert written(shop) == before


# --- control characters --------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\u0000", "\u0007", "\u001b", "\u007f", "\u0085", "\u009b"])
def test_a_control_character_in_a_customer_name_is_refused(shop, char):
    before = written(shop)
    r = shop.client.post("/v1/customers", json=signup_body(name=f"a{char}b"))
    body = problem(r, 422, "control_character")
    assert body["errors"] == [{"field": "name", "code": "control_character", "message": body["errors"][0]["message"]}]
    assert written(shop) == before


def test_control_characters_are_refused_in_every_text_field_of_every_route(shop, acme):
    staff = shop.staff()
    before = written(shop)
    h = {**acme["headers"], "Idempotency-Key": "nul"}
    cases = [
        ("/v1/customers", signup_body(email="a\u0000@b.example"), "email"),
        ("/v1/customers", signup_body(vat_number="FR4030326\u00005045"), "vat_number"),
        ("/v1/orders", {"items": [{"plan": "web-domain-com-p12m", "options": {"domain": "a\u0000.com"}}]}, "items[0].options.domain"),
        ("/v1/orders", {"items": [{"plan": "web-domain-com-p12m", "options": {"dom\u0000ain": "a.com"}}]}, "items[0].options.dom\u0000ain"),
        ("/v1/me/balance/top-ups", {"amount": "1\u00000"}, "amount"),
        ("/v1/support/tickets", {"service_id": 1, "subject": "Help", "message": "x\u0000y"}, "message"),
        ("/v1/usage", {"records": [{"id": "r\u00001", "project": 1, "metric": "m", "quantity": "1", "at": "2026-01-05T08:00:00Z"}]},
         "records[0].id"),
    ]
    for path, body, field in cases:
        r = shop.client.post(path, json=body, headers=h)
        assert [e["field"] for e in problem(r, 422, "control_character")["errors"]] == [field], path
    r = shop.client.post("/v1/staff/legacy-imports?storefront=FR", content=b"legacy_id,name\nP1,a\x00b\n",
                         headers={**staff, "Content-Type": "text/csv"})  # a file's text too
    assert [e["field"] for e in problem(r, 422, "control_character")["errors"]] == ["body"]
    r = shop.client.get("/v1/services?after=1%00", headers=acme["headers"])  # the query too
    problem(r, 422, "control_character")
    r = shop.client.post("/v1/test-gateway/payments/ref%00x/resolve", json={"outcome": "succeeded"}, headers=staff)  # and the path
    problem(r, 422, "control_character")
    assert written(shop) == before


def test_line_breaks_and_tabs_stay_allowed_and_an_escaped_backslash_is_no_control(shop, acme):
    r = shop.client.post("/v1/customers", content=json.dumps(signup_body(name="a\\u0000b")).encode(), headers=JSON)
    assert r.status_code == 201 and r.json()["customer"]["name"] == "a\\u0000b"  # the six characters, not a NUL
    service = shop.order(acme, "web-hosting-starter-p1m")["services"][0]["id"]
    r = shop.client.post("/v1/support/tickets", json={"service_id": service, "subject": "Help",
                                                      "message": "Line one\r\nLine two\n\tindented"}, headers=acme["headers"])
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("brk", ["\n", "\r\n", "\u2028"])
def test_a_one_line_text_may_not_hold_a_line_break(shop, acme, brk):
    """A name, a subject or a title is printed on one line (a mail's header, a log line): a line
    break there would forge one. A message keeps its lines (above)."""
    service = shop.order(acme, "web-hosting-starter-p1m")["services"][0]["id"]
    staff = shop.staff()
    before = written(shop)
    r = shop.client.post("/v1/customers", json=signup_body(name=f"Acme{brk}Bcc: all@example.com"))
    assert [(e["field"], e["code"]) for e in problem(r, 422, "invalid_input")["errors"]] == [("name", "line_break")]
    r = shop.client.post("/v1/support/tickets", json={"service_id": service, "subject": f"Help{brk}me", "message": "x"},
                         headers=acme["headers"])
    assert [e["field"] for e in problem(r, 422, "line_break")["errors"]] == ["subject"]
    r = shop.client.post("/v1/me/api-keys", json={"name": f"ci{brk}key", "scopes": ["services:read"]}, headers=acme["headers"])
    problem(r, 422, "line_break")
    r = shop.client.post("/v1/staff/status/incidents", headers=staff, json={
        "universe": "web", "kind": "incident", "title": {"en": f"Down{brk}Subject: spoof"}, "text": {"en": "Looking."}})
    assert [e["field"] for e in problem(r, 422, "line_break")["errors"]] == ["title.en"]
    assert written(shop) == before


# --- amounts -------------------------------------------------------------------------------------


def test_amounts_are_bounded_per_currency_so_that_they_fit_the_integer_columns():
    assert MAX_MINOR * 90_000 < 2**63  # room to sum ninety thousand of the largest amounts
    assert max_amount("EUR") == to_minor("1000000000000.00", "EUR") / 100
    assert to_minor(max_amount("JPY"), "JPY") == to_minor(max_amount("EUR"), "EUR") == to_minor(max_amount("BHD"), "BHD") == MAX_MINOR
    for currency in ("EUR", "JPY", "BHD"):
        with pytest.raises(AmountOutOfRange):
            to_minor(max_amount(currency) + max_amount(currency).scaleb(-20).quantize(1) + 1, currency)
        with pytest.raises(AmountOutOfRange):
            to_minor(-max_amount(currency) - 1, currency)
    for huge in ("99999999999999999999.99", "1e999999999", "-1E+30"):
        with pytest.raises(AmountOutOfRange):
            to_minor(huge, "EUR")
        with pytest.raises(AmountOutOfRange):
            to_micro(huge)
    with pytest.raises(MoneyError):
        to_minor("1e-999999999", "EUR")  # never rounded to zero


def test_a_top_up_beyond_the_bound_is_refused_and_the_largest_is_accepted(shop, acme):
    before = written(shop)
    for amount in ("99999999999999999999.99", "1000000000000.01", "1e999999999"):
        r = shop.client.post("/v1/me/balance/top-ups", json={"amount": amount, "outcome": "success"}, headers=acme["headers"])
        body = problem(r, 422, "amount_out_of_range")
        assert "1,000,000,000,000.00" in body["detail"] or "1000000000000.00" in body["detail"], body["detail"]
    assert written(shop) == before
    r = shop.client.post("/v1/me/balance/top-ups", json={"amount": "1000000000000.00", "outcome": "success"}, headers=acme["headers"])
    assert r.status_code == 201, r.text
    assert shop.client.get("/v1/me", headers=acme["headers"]).json()["balance"]["amount_minor"] == MAX_MINOR + 10_000


def test_a_credit_note_line_beyond_the_bound_is_refused(shop, acme):
    invoice = shop.order(acme, "web-hosting-starter-p1m")["invoice"]
    line = shop.client.get(f"/v1/invoices/{invoice['id']}", headers=acme["headers"]).json()["lines"][0]
    before = written(shop)
    r = shop.client.post(f"/v1/staff/invoices/{invoice['id']}/credit-notes",
                         json={"reason": "x", "lines": [{"line_id": line["id"], "amount": "99999999999999999999.99"}]},
                         headers={**shop.staff(), "Idempotency-Key": "cn"})
    assert r.status_code == 422, r.text
    assert [e["code"] for e in r.json()["errors"]] == ["amount_out_of_range"]
    assert written(shop)[1:] == before[1:]  # (the staff account aside)


# --- VAT numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["ＦＲ40303265045", "XX123", "ÉL123", "FR" + "4" * 10_000, "FR½", "FRⅫ"])
def test_vat_numbers_that_python_stdnum_refuses_outright_are_invalid_vat_numbers(shop, number):
    before = written(shop)
    problem(shop.client.post("/v1/customers", json=signup_body(vat_number=number)), 422, "invalid_vat_number")
    assert written(shop) == before


def test_a_vat_number_written_with_other_digits_is_kept_in_ascii(shop):
    r = shop.client.post("/v1/customers", json=signup_body(vat_number="FR403032650４5"))
    assert r.status_code == 201 and r.json()["customer"]["vat_number"] == "FR40303265045"


# --- media types and sizes -----------------------------------------------------------------------


def test_a_body_that_is_not_json_is_415_so_no_page_can_sign_up_from_a_visitors_browser(shop, acme):
    before = written(shop)
    body = json.dumps(signup_body()).encode()
    for content_type in ("text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                         "multipart/form-data; boundary=x", None):
        headers = {"Content-Type": content_type} if content_type else {}
        problem(shop.client.post("/v1/customers", content=body, headers=headers), 415, "unsupported_media_type")
    r = shop.client.post("/v1/me/balance/top-ups", content=b'{"amount": "1.00"}', headers={**acme["headers"], "Content-Type": "text/plain"})
    problem(r, 415, "unsupported_media_type")
    # without a key, a route that needs one says so first, whatever the body
    r = shop.client.post("/v1/me/balance/top-ups", content=b'{"amount": "1.00"}', headers={"Content-Type": "text/plain"})
    problem(r, 401, "unauthenticated")
    assert written(shop) == before
    for content_type in ("application/json; charset=utf-8", "application/merge-patch+json"):
        assert shop.client.post("/v1/customers", content=body, headers={"Content-Type": content_type}).status_code == 201


def test_a_body_over_the_size_limit_is_413(shop):
    before = written(shop)
    big = json.dumps(signup_body(name="x" * 11_000_000)).encode()
    problem(shop.client.post("/v1/customers", content=big, headers=JSON), 413, "too_large")
    assert written(shop) == before


# --- the OpenAPI document ------------------------------------------------------------------------


def test_the_openapi_document_lists_the_problems_of_every_operation_and_the_routes_without_key(client):
    doc = client.get("/schema/openapi.json").json()
    problem_schema = doc["components"]["responses"]["UnsupportedMediaType"]["content"]["application/problem+json"]["schema"]
    assert {"type", "title", "status", "code", "detail", "instance"} <= set(problem_schema["required"])

    def problems(path, method):
        responses = doc["paths"][path][method]["responses"]
        assert all(r["$ref"].startswith("#/components/responses/") for s, r in responses.items() if s >= "400")
        return sorted(int(s) for s in responses if s >= "400")

    assert problems("/v1/customers", "post") == [400, 409, 413, 415, 422, 429]
    assert doc["paths"]["/v1/customers"]["post"]["security"] == [] == doc["paths"]["/v1/catalog"]["get"]["security"]
    assert problems("/v1/services/{service_id}", "get") == [400, 401, 403, 404, 422, 429]
    assert "security" not in doc["paths"]["/v1/services/{service_id}"]["get"]  # the document's default: a key
    assert problems("/v1/orders", "post") == [400, 401, 403, 404, 409, 413, 415, 422, 429]
    assert problems("/v1/services", "get") == [400, 401, 403, 422, 429]
    every = [op for item in doc["paths"].values() for op in item.values()]
    assert len(every) > 40 and all({"400", "422", "429"} <= set(op["responses"]) for op in every)
    assert all({"401", "403"} <= set(op["responses"]) for op in every if op.get("security") != [])
    # what the schema allows, the API accepts: exact 64-bit ids, no unknown fields in a body
    service_id = doc["paths"]["/v1/services/{service_id}"]["get"]["parameters"][0]["schema"]
    assert service_id["maximum"] == 2**63 - 1 and service_id["minimum"] == 1
    assert doc["components"]["schemas"]["CustomerCreate"]["additionalProperties"] is False
