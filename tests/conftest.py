"""Helpers shared by the tests; fixtures (rt, client, clock, both engines) come from core.testing."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
import socket

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from core.renewal import run_renewal
from core.scheduler import run_queues

_keys = itertools.count(1)


class Shop:
    """Drives the API like a customer would, and moves the clock like time would."""

    def __init__(self, client, rt, clock):
        self.client, self.rt, self.clock = client, rt, clock

    def signup(self, subsidiary="FR", kind="company", name="Acme SAS", top_up: str | None = None, **extra) -> dict:
        body = {"subsidiary": subsidiary, "kind": kind, "name": name, "email": "ops@acme.example", **extra}
        r = self.client.post("/v1/customers", json=body)
        assert r.status_code == 201, r.text
        data = r.json()
        headers = {"Authorization": f"Bearer {data['api_key']}"}
        customer = {**data["customer"], "headers": headers}
        if top_up:
            r = self.client.post("/v1/me/balance/top-ups", json={"amount": top_up, "outcome": "success"}, headers=headers)
            assert r.status_code == 201, r.text
        return customer

    def staff(self) -> dict:
        from core.customers import create_customer
        from core.uow import unit_of_work

        with unit_of_work(self.rt) as conn:
            _, key = create_customer(conn, self.rt, {"subsidiary": "FR", "name": "Back Office", "email": "bo@univers.example"},
                                     is_staff=True)
        return {"Authorization": f"Bearer {key}"}

    def order(self, customer, plan, key=None, payment=None, expect=201, **item) -> dict:
        body = {"items": [{"plan": plan, **item}], "payment": payment or {"method": "balance"}}
        headers = {**customer["headers"], "Idempotency-Key": key or f"key-{next(_keys)}"}
        r = self.client.post("/v1/orders", json=body, headers=headers)
        assert r.status_code == expect, r.text
        return r.json()

    def deliver(self):
        return run_queues(self.rt)["outbox"]

    def service(self, customer, service_id) -> dict:
        r = self.client.get(f"/v1/services/{service_id}", headers=customer["headers"])
        assert r.status_code == 200, r.text
        return r.json()

    def invoices(self, customer) -> list[dict]:
        r = self.client.get("/v1/invoices?limit=200", headers=customer["headers"])
        assert r.status_code == 200, r.text
        return r.json()["items"]

    def days(self, until: dt.date):
        """Let time pass: the daily jobs (renewal + dunning, then the outbox) run every day."""
        day = self.clock.today()
        while day < until:
            day += dt.timedelta(days=1)
            self.clock.set(day)
            run_renewal(self.rt, day)
            run_queues(self.rt)

    def count(self, table) -> int:
        with self.rt.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table.__table__)).scalar_one()


@pytest.fixture
def shop(client, rt, clock) -> Shop:
    return Shop(client, rt, clock)


class Inbox:
    """A real SMTP server on a free port; what it receives, parsed."""

    def __init__(self):
        self.messages: list[email.message.EmailMessage] = []

        inbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
                inbox.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
                return "250 OK"

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> str:
        self.controller.start()
        return f"smtp://127.0.0.1:{self.port}"

    def kinds(self) -> list[str]:
        return [m["X-Univers-Notification"] for m in self.messages]


@pytest.fixture
def inbox(rt):
    box = Inbox()
    rt.settings = rt.settings.with_(smtp_url=box.start())
    yield box
    box.controller.stop()
