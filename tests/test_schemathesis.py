"""Schemathesis over the published OpenAPI schema, with valid keys: generated requests to every
operation must never get a 5xx answer, nor an answer that breaks the schema.

It runs on both engines against a database holding a customer with delivered services, their
invoices and payments, and a staff administrator; staff routes are called with the
administrator's key, the others with the customer's. Every operation is tried, and every
failure is reported together.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from core.api.app import create_app

EXAMPLES = int(os.environ.get("UNIVERS_SCHEMATHESIS_EXAMPLES", "15"))


def test_no_5xx_and_no_answer_outside_the_schema(rt, shop):
    customer = shop.signup(top_up="300.00")
    shop.order(customer, "bm-ks-1-p1m")
    shop.order(customer, "web-hosting-starter-p1m")
    shop.deliver()
    keys = {"customer": customer["headers"], "staff": shop.staff()}
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(rt))
    failures, tried = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tried += 1
        staff_route = operation.path.startswith(("/v1/staff", "/v1/test-gateway"))

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            case.headers = {**(case.headers or {}), **keys["staff" if staff_route else "customer"]}
            if operation.path.endswith("/logs/tail"):  # a live stream lasts its timeout: no waiting here
                case.query = {**(case.query or {}), "timeout": 0}
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collected, reported together below
            failures.append(f"{operation.label}: {str(exc)[:600]}")
    assert tried > 40
    assert not failures, "\n\n".join(failures)
