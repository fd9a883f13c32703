"""Helpers shared by the tests; fixtures (rt, client, clock, shop, both engines) come from core.testing."""

from __future__ import annotations

import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller

from core.testing import Shop  # noqa: F401  (the shop fixture's class, imported from here by some tests)


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
