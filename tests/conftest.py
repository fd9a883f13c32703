"""Helpers shared by the tests; fixtures (rt, client, clock, shop, both engines) come from core.testing."""

from __future__ import annotations

import email
import email.policy
import socket
import uuid

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from core.config import Settings
from core.testing import PG_URL, Shop, make_runtime  # noqa: F401  (Shop: the shop fixture's class, imported from here)


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


@pytest.fixture
def other_db(engine_name, tmp_path, clock):
    """A second, empty Univers database (database B) with its own runtime."""
    if engine_name == "sqlite":
        url = (f"sqlite:///{tmp_path / 'b.db'}", None)
    else:
        url = (PG_URL, f"t_{uuid.uuid4().hex[:12]}")
        admin = create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {url[1]}"))
    settings = Settings(data_dir=tmp_path / "b", database_url=url[0], sim_delay=0.0, scheduler=False)
    runtime = make_runtime(settings, clock, url)
    yield runtime
    runtime.close()
    if url[1]:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {url[1]} CASCADE"))
        admin.dispose()
