"""Schemathesis over the published OpenAPI schema, with valid keys: generated requests to every
operation, valid ones and invalid ones, pass ALL of schemathesis' checks: never a 5xx, every
status and body as the schema says (problems included), invalid data refused and valid data
accepted, a route that needs a key refuses a request without one, and so on.

It runs on both engines against a database holding a customer with delivered services, their
invoices and payments, and a staff administrator; staff routes are called with the
administrator's key, the others with the customer's. Every operation is tried, and every
failure is reported together.
"""

from __future__ import annotations

import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from core.api.app import create_app

EXAMPLES = int(os.environ.get("UNIVERS_SCHEMATHESIS_EXAMPLES", "15"))
# A schema-valid request may still break a business rule no schema can say (an unknown plan, an
# amount with too many decimals for the currency...): 422, with its stable code. A 400 stays a
# failure: it would mean the schema allows what the decoder refuses.
# Unknown query parameters are ignored (not generated), and the key is the test's (not generated).
CONFIG = SchemathesisConfig.from_dict({
    "checks": {"positive_data_acceptance": {"expected-statuses": ["2XX", "3XX", "401", "403", "404", "409", "422", "429"]}},
    "generation": {"allow-extra-parameters": False, "with-security-parameters": False},
})


def test_every_operation_passes_all_schemathesis_checks(rt, shop):
    customer = shop.signup(top_up="300.00")
    shop.order(customer, "bm-ks-1-p1m")
    shop.order(customer, "web-hosting-starter-p1m")
    shop.deliver()
    keys = {"customer": customer["headers"], "staff": shop.staff()}
    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(rt), config=CONFIG)
    failures, tried = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        tried += 1
        staff_route = operation.path.startswith(("/v1/staff", "/v1/test-gateway"))

        @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            if operation.path.endswith("/logs/tail"):  # a live stream lasts its timeout: no waiting here
                case.query = {**(case.query or {}), "timeout": 0}
            case.call_and_validate(headers=keys["staff" if staff_route else "customer"])  # all the checks

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collected, reported together below
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert tried > 40
    assert not failures, "\n\n".join(failures)
